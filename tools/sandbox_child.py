"""The sandboxed interpreter: run as a separate process by ``sandbox.py``.

It reads one JSON request on stdin, locks itself down, replays the episode's
earlier cells (output discarded) so that their variables exist, runs the new
cell and writes its report as JSON lines on the result descriptor the parent
passed (never on stdout, which the cell owns).

The isolation boundary is the operating system (``sandbox.py`` starts this file
inside bubblewrap namespaces as an unprivileged user). The layers added here
hold inside that boundary, and alone in the explicitly weak ``process`` mode:
1. resource limits: CPU seconds, address space, file size, open files, no core;
2. a private network namespace, in ``process`` mode only (bubblewrap made one);
3. a seccomp filter: on x86_64 an allow-list of the system calls an interpreter
   needs (threads but no processes, AF_UNIX sockets only, signals to itself
   only, no ptrace/mount/namespaces/keyrings/bpf...); elsewhere a deny-list;
4. an audit hook (``sys.addaudithook``, which cannot be removed): refuses process
   creation, network sockets, writes outside the working folder, ctypes and the
   introspection that reaches the hook's own data. It gives clear errors; it is
   not a boundary (Python code can always reach around a Python-level check).

The report's first line (``ready``, with the layers) is written before any cell
runs, so a cell cannot misreport the layers; the second is the result.

Tools the parent bridges (``request["tools"]``) become functions in the cells'
namespace: each call writes one JSON line on the request descriptor and blocks
until the parent's answer arrives on the response descriptor (see ``sandbox.py``).
The bounds checked here (argument size, calls per cell) give the cell clear
errors; the parent checks them again, since a cell can write to the pipe itself.

This file must only import the standard library: it runs with ``-P -s -B``.
"""

from __future__ import annotations

import ast
import ctypes
import ctypes.util
import io
import json
import linecache
import os
import platform
import resource
import socket
import sys
import threading
import traceback
import types

CLONE_NEWNET = 0x40000000
CLONE_NEWUSER = 0x10000000
CLONE_THREAD = 0x00010000

# ---- seccomp ------------------------------------------------------------------------
# x86_64 system call numbers (asm/unistd_64.h) that a CPython interpreter running
# plain Python, threads, sqlite3 and file I/O in its folder was seen to need, plus
# their harmless relatives. Everything else answers EPERM. clone/socket/kill/tgkill/
# prctl/prlimit64 are allowed only with the argument checks below. Left out on
# purpose: memfd_create (its pages count against no rlimit until mapped: host memory
# past the limit) and flock (BSD locks work on read-only files: a lock on the
# interpreter's files would reach the host and the other sandboxes).
_X86_64_ALLOWED = {
    "read": 0, "write": 1, "open": 2, "close": 3, "stat": 4, "fstat": 5, "lstat": 6, "poll": 7,
    "lseek": 8, "mmap": 9, "mprotect": 10, "munmap": 11, "brk": 12, "rt_sigaction": 13,
    "rt_sigprocmask": 14, "rt_sigreturn": 15, "ioctl": 16, "pread64": 17, "pwrite64": 18,
    "readv": 19, "writev": 20, "access": 21, "pipe": 22, "select": 23, "sched_yield": 24,
    "mremap": 25, "msync": 26, "mincore": 27, "madvise": 28, "dup": 32, "dup2": 33, "pause": 34,
    "nanosleep": 35, "getitimer": 36, "alarm": 37, "setitimer": 38, "getpid": 39, "sendfile": 40,
    "sendto": 44, "recvfrom": 45, "sendmsg": 46, "recvmsg": 47, "shutdown": 48,
    "getsockname": 51, "getpeername": 52, "socketpair": 53, "setsockopt": 54, "getsockopt": 55,
    "exit": 60, "uname": 63, "fcntl": 72, "fsync": 74, "fdatasync": 75,
    "truncate": 76, "ftruncate": 77, "getdents": 78, "getcwd": 79, "chdir": 80, "fchdir": 81,
    "rename": 82, "mkdir": 83, "rmdir": 84, "creat": 85, "link": 86, "unlink": 87, "symlink": 88,
    "readlink": 89, "chmod": 90, "fchmod": 91, "umask": 95, "gettimeofday": 96, "getrlimit": 97,
    "getrusage": 98, "sysinfo": 99, "times": 100, "getuid": 102, "getgid": 104, "geteuid": 107,
    "getegid": 108, "getppid": 110, "getpgrp": 111, "getgroups": 115, "getresuid": 118,
    "getresgid": 120, "getpgid": 121, "getsid": 124, "sigaltstack": 131, "statfs": 137,
    "fstatfs": 138, "getpriority": 140, "sched_getparam": 143, "sched_getscheduler": 145,
    "sched_get_priority_max": 146, "sched_get_priority_min": 147, "mlock": 149, "munlock": 150,
    "prctl": 157, "arch_prctl": 158, "gettid": 186, "futex": 202, "sched_getaffinity": 204,
    "epoll_create": 213, "getdents64": 217, "set_tid_address": 218, "restart_syscall": 219,
    "fadvise64": 221, "timer_create": 222, "timer_settime": 223, "timer_gettime": 224,
    "timer_getoverrun": 225, "timer_delete": 226, "clock_gettime": 228, "clock_getres": 229,
    "clock_nanosleep": 230, "exit_group": 231, "epoll_wait": 232, "epoll_ctl": 233, "utimes": 235,
    "openat": 257, "mkdirat": 258, "newfstatat": 262, "unlinkat": 263, "renameat": 264,
    "linkat": 265, "symlinkat": 266, "readlinkat": 267, "fchmodat": 268, "faccessat": 269,
    "pselect6": 270, "ppoll": 271, "set_robust_list": 273, "get_robust_list": 274, "splice": 275,
    "tee": 276, "sync_file_range": 277, "utimensat": 280, "epoll_pwait": 281,
    "timerfd_create": 283, "eventfd": 284, "fallocate": 285, "timerfd_settime": 286,
    "timerfd_gettime": 287, "eventfd2": 290, "epoll_create1": 291, "dup3": 292, "pipe2": 293,
    "preadv": 295, "pwritev": 296, "prlimit64": 302, "getcpu": 309, "renameat2": 316,
    "getrandom": 318, "membarrier": 324, "mlock2": 325,
    "copy_file_range": 326, "statx": 332, "rseq": 334, "close_range": 436, "faccessat2": 439,
    "epoll_pwait2": 441,
}
_SYSCALLS = {
    "x86_64": {
        "arch": 0xC000003E, "allowed": _X86_64_ALLOWED,
        "fork": 57, "vfork": 58, "clone": 56, "clone3": 435, "execve": 59, "execveat": 322,
        "socket": 41, "kill": 62, "tkill": 200, "tgkill": 234, "ptrace": 101,
    },
    "aarch64": {  # no allow-list written for it yet: the deny-list below
        "arch": 0xC00000B7,
        "clone": 220, "clone3": 435, "execve": 221, "execveat": 281,
        "socket": 198, "kill": 129, "tkill": 130, "tgkill": 131, "ptrace": 117,
    },
}
BPF_LD_W_ABS = 0x20
BPF_JEQ_K = 0x15
BPF_JGE_K = 0x35
BPF_JSET_K = 0x45
BPF_RET_K = 0x06
RET_ALLOW = 0x7FFF0000
RET_ERRNO = 0x00050000
EPERM, EACCES, ENOSYS = 1, 13, 38
OFF_NR, OFF_ARCH, OFF_ARG0, OFF_ARG1 = 0, 4, 16, 24
PR_SET_DUMPABLE, RLIMIT_CORE = 4, 4


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


def _seccomp_program(table: dict, pid: int) -> list[tuple[int, int, int, int]]:
    """A classic-BPF seccomp program. Every test jumps at most one instruction
    (``JEQ nr; RET``), so the program never needs a jump longer than BPF's 255."""

    def stmt(code, k):
        return (code, 0, 0, k)

    def jump(code, k, jt, jf):
        return (code, jt, jf, k)

    allow_list = "allowed" in table
    prog = [
        stmt(BPF_LD_W_ABS, OFF_ARCH),
        jump(BPF_JEQ_K, table["arch"], 1, 0),
        # Another ABI (i386 system calls on x86_64): refused under an allow-list.
        stmt(BPF_RET_K, (RET_ERRNO | EPERM) if allow_list else RET_ALLOW),
        stmt(BPF_LD_W_ABS, OFF_NR),
    ]
    if table["arch"] == 0xC000003E:  # x32 system calls on x86_64
        prog += [jump(BPF_JGE_K, 0x40000000, 0, 1), stmt(BPF_RET_K, RET_ERRNO | ENOSYS)]
    # clone3 hides its flags in memory a filter cannot read: answer ENOSYS so that
    # the C library falls back to clone(), whose flags are checked below.
    simple = [("clone3", ENOSYS), ("fork", EPERM), ("vfork", EPERM), ("execve", EPERM),
              ("execveat", EPERM), ("ptrace", EPERM), ("tkill", EPERM)]
    for name, errno in simple:
        if name in table:
            prog += [jump(BPF_JEQ_K, table[name], 0, 1), stmt(BPF_RET_K, RET_ERRNO | errno)]
    # Each block below loads an argument, so it ends in returns only.
    prog += [  # clone: threads (CLONE_THREAD) only
        jump(BPF_JEQ_K, table["clone"], 0, 4),
        stmt(BPF_LD_W_ABS, OFF_ARG0),
        jump(BPF_JSET_K, CLONE_THREAD, 0, 1),
        stmt(BPF_RET_K, RET_ALLOW),
        stmt(BPF_RET_K, RET_ERRNO | EPERM),
    ]
    prog += [  # socket: AF_UNIX only
        jump(BPF_JEQ_K, table["socket"], 0, 4),
        stmt(BPF_LD_W_ABS, OFF_ARG0),
        jump(BPF_JEQ_K, socket.AF_UNIX, 0, 1),
        stmt(BPF_RET_K, RET_ALLOW),
        stmt(BPF_RET_K, RET_ERRNO | EACCES),
    ]
    for name in ("kill", "tgkill"):  # signals to this process only
        prog += [
            jump(BPF_JEQ_K, table[name], 0, 4),
            stmt(BPF_LD_W_ABS, OFF_ARG0),
            jump(BPF_JEQ_K, pid, 0, 1),
            stmt(BPF_RET_K, RET_ALLOW),
            stmt(BPF_RET_K, RET_ERRNO | EPERM),
        ]
    if not allow_list:
        prog.append(stmt(BPF_RET_K, RET_ALLOW))
        return prog
    # The core-dump settings stay as the harness left them (see main): a cell may
    # not make itself dumpable again nor change RLIMIT_CORE.
    for name, offset, refused in (("prctl", OFF_ARG0, PR_SET_DUMPABLE), ("prlimit64", OFF_ARG1, RLIMIT_CORE)):
        prog += [
            jump(BPF_JEQ_K, table["allowed"][name], 0, 4),
            stmt(BPF_LD_W_ABS, offset),
            jump(BPF_JEQ_K, refused, 0, 1),
            stmt(BPF_RET_K, RET_ERRNO | EPERM),
            stmt(BPF_RET_K, RET_ALLOW),
        ]
    for nr in sorted(set(table["allowed"].values())):
        prog += [jump(BPF_JEQ_K, nr, 0, 1), stmt(BPF_RET_K, RET_ALLOW)]
    prog.append(stmt(BPF_RET_K, RET_ERRNO | EPERM))
    return prog


def install_seccomp(libc) -> str | None:
    """Install the filter; return its kind (``allow-list``/``deny-list``) or None."""
    table = _SYSCALLS.get(platform.machine())
    if table is None:
        return None
    program = _seccomp_program(table, os.getpid())
    filters = (_SockFilter * len(program))(*[_SockFilter(c, jt, jf, k) for c, jt, jf, k in program])
    fprog = _SockFprog(len(program), filters)
    PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        return None
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        return None
    return "allow-list" if "allowed" in table else "deny-list"


def isolate_network(libc) -> bool:
    if libc.unshare(CLONE_NEWNET) == 0:
        return True
    return libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0  # unprivileged users


# ---- audit hook ------------------------------------------------------------------------
def make_audit_hook(workdir: str, also_writable: tuple[str, ...] = ()):
    """The hook and everything it reads live in this closure, as immutable values:
    nothing reachable from the cell's globals or ``sys.modules`` changes its rules."""
    process_events = frozenset({
        "os.fork", "os.forkpty", "os.system", "os.exec", "os.posix_spawn", "os.spawn",
        "subprocess.Popen", "pty.spawn", "os.startfile",
    })
    network_events = frozenset({
        "socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg", "socket.getaddrinfo",
        "socket.gethostbyname", "socket.gethostbyaddr", "socket.gethostname",
    })
    ctypes_events = frozenset({
        "ctypes.dlopen", "ctypes.dlsym", "ctypes.dlsym/handle", "ctypes.call_function",
        "ctypes.cdata", "ctypes.string_at", "ctypes.wstring_at", "ctypes.PyObj_FromPtr",
    })
    # Introspection that finds the hook, its closure or the harness's frames.
    introspection_events = frozenset({"gc.get_objects", "gc.get_referrers", "gc.get_referents"})
    path_events = types.MappingProxyType({  # event -> positions of path arguments that get modified
        "os.remove": (0,), "os.rmdir": (0,), "os.mkdir": (0,), "os.rename": (0, 1),
        "os.symlink": (1,), "os.link": (0, 1), "os.truncate": (0,), "os.chmod": (0,),
        "os.chown": (0,), "os.utime": (0,), "os.chflags": (0,), "os.lchflags": (0,),
        "os.setxattr": (0,), "os.removexattr": (0,), "shutil.rmtree": (0,), "os.mkfifo": (0,),
        "os.mknod": (0,), "sqlite3.connect": (0,),
    })
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
    af_unix = int(socket.AF_UNIX)
    roots = tuple(os.path.realpath(p) for p in (workdir, *also_writable))
    allowed_files = frozenset({"/dev/null"})
    pid = os.getpid()
    realpath, fspath, join, getcwd = os.path.realpath, os.fspath, os.path.join, os.getcwd

    def inside(path, dir_fd=None) -> bool:
        if isinstance(path, int):  # an open descriptor: checked when it was opened
            return True
        # the events pass -1 when no dir_fd was given; a relative path against a real
        # descriptor could be anywhere
        if dir_fd is not None and dir_fd not in (-1, -100) and not (isinstance(path, str) and path.startswith("/")):
            return False
        try:
            text = fspath(path)
        except TypeError:
            return False
        if isinstance(text, bytes):
            text = text.decode(errors="surrogateescape")
        if text in (":memory:", ""):
            return True
        full = realpath(text if text.startswith("/") else join(getcwd(), text))
        return full in allowed_files or any(full == root or full.startswith(root + "/") for root in roots)

    def hook(event: str, args: tuple) -> None:
        if event == "open":
            path, mode, flags = (tuple(args) + (None, None, 0))[:3]
            writing = bool(flags and flags & write_flags) or (
                isinstance(mode, str) and any(c in mode for c in "wax+")
            )
            if writing and path is not None and not inside(path):
                raise PermissionError(f"writing outside the sandbox folder is not allowed: {path}")
        elif event in path_events:
            # dir_fd is the last argument of these events where the call has one
            dir_fd = args[-1] if event.startswith("os.") and len(args) > 1 and isinstance(args[-1], int) else None
            for i in path_events[event]:
                if i < len(args) and args[i] is not None and not inside(args[i], dir_fd):
                    raise PermissionError(f"changing files outside the sandbox folder is not allowed: {args[i]}")
        elif event in process_events:
            raise PermissionError("starting processes is not allowed in the sandbox")
        elif event in ("os.kill", "os.killpg"):
            if event == "os.killpg" or args[0] != pid:
                raise PermissionError("signalling other processes is not allowed in the sandbox")
        elif event == "socket.__new__":
            if len(args) > 1 and args[1] not in (af_unix, -1):
                raise PermissionError("network access is not allowed in the sandbox")
        elif event in network_events:
            raise PermissionError("network access is not allowed in the sandbox")
        elif event in ctypes_events or event.startswith("cffi."):
            raise PermissionError("ctypes is not allowed in the sandbox")
        elif event in introspection_events:
            raise PermissionError(f"{event} is not allowed in the sandbox")
        elif event == "object.__setattr__" and len(args) > 1 and args[1] in ("__code__", "__globals__"):
            raise PermissionError("rewriting functions is not allowed in the sandbox")

    return hook


# ---- running cells ---------------------------------------------------------------------------
class _Bounded(io.TextIOBase):
    """A text sink that keeps the first ``limit`` characters and counts the rest."""

    def __init__(self, limit: int):
        self.limit, self.parts, self.size, self.dropped = limit, [], 0, 0

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        room = self.limit - self.size
        if room > 0:
            self.parts.append(s[:room])
            self.size += min(len(s), room)
        self.dropped += max(0, len(s) - max(room, 0))
        return len(s)

    def getvalue(self) -> str:
        text = "".join(self.parts)
        return text + (f"\n… ({self.dropped} more characters)" if self.dropped else "")


def _cell_traceback(exc: BaseException) -> str:
    te = traceback.TracebackException.from_exception(exc)
    frames = [f for f in te.stack if f.filename.startswith("<cell")]
    te.stack = traceback.StackSummary.from_list(frames)
    return "".join(te.format()).rstrip()


def run_cell(source: str, name: str, namespace: dict) -> object:
    """Execute a cell; return the value of a trailing expression (else None)."""
    linecache.cache[name] = (len(source), None, source.splitlines(True), name)
    tree = ast.parse(source, filename=name, mode="exec")
    last = tree.body[-1] if tree.body else None
    if isinstance(last, ast.Expr):
        body = ast.Module(body=tree.body[:-1], type_ignores=[])
        exec(compile(body, name, "exec"), namespace)
        return eval(compile(ast.Expression(last.value), name, "eval"), namespace)
    exec(compile(tree, name, "exec"), namespace)
    return None


def _report(fd: int, message: dict) -> None:
    data = (json.dumps(message) + "\n").encode()
    while data:
        data = data[os.write(fd, data):]


# ---- the tool bridge: the cell's end ------------------------------------------------------
class ToolLimitError(RuntimeError):
    """More tool calls in one cell than the sandbox allows."""


class ToolBridgeError(RuntimeError):
    """The parent refused a tool call (its answer says why), or the bridge broke."""


class ToolBridge:
    """The functions that forward a cell's tool calls to the parent."""

    def __init__(self, names: list[str], request_fd: int, response_fd: int, limits: dict):
        self.names = [str(n) for n in names]
        self.request_fd, self.response_fd = request_fd, response_fd
        self.max_calls = int(limits["tool_calls"])
        self.max_argument = int(limits["tool_argument_chars"])
        self.lock = threading.Lock()  # one call at a time: the answers come back in order
        self.unread = b""
        self.next_id = 0
        self.calls_in_cell = 0
        self.replaying = False

    def begin_cell(self, replaying: bool) -> None:
        self.calls_in_cell, self.replaying = 0, replaying

    def functions(self) -> dict:
        def make(name: str):
            def tool(argument="") -> str:
                return self.call(name, argument)

            tool.__name__ = tool.__qualname__ = name
            tool.__doc__ = f"{name}(argument) -> str: the tool {name}, answered outside the sandbox."
            return tool

        return {name: make(name) for name in self.names}

    def call(self, name: str, argument) -> str:
        text = argument if isinstance(argument, str) else str(argument)
        if len(text) > self.max_argument:
            raise ValueError(f"{name}(): the argument has {len(text)} characters; "
                             f"at most {self.max_argument} are allowed")
        with self.lock:
            if self.calls_in_cell >= self.max_calls:
                raise ToolLimitError(f"more than {self.max_calls} tool calls in one cell")
            self.calls_in_cell += 1
            self.next_id += 1
            request_id = self.next_id
            _report(self.request_fd, {"id": request_id, "tool": name, "argument": text, "replay": self.replaying})
            while True:  # answers to requests the cell wrote itself are skipped
                answer = self._read_answer()
                if answer.get("id") == request_id:
                    break
        if answer.get("ok") is True and isinstance(answer.get("answer"), str):
            return answer["answer"]
        raise ToolBridgeError(str(answer.get("error") or "the tool call failed"))

    def _read_answer(self) -> dict:
        while b"\n" not in self.unread:
            data = os.read(self.response_fd, 65536)
            if not data:
                raise ToolBridgeError("the tool bridge was closed")
            self.unread += data
        line, _, self.unread = self.unread.partition(b"\n")
        answer = json.loads(line)
        return answer if isinstance(answer, dict) else {}


def main() -> None:
    request = json.loads(sys.stdin.read())
    limits = request["limits"]
    layers = request["layers"]
    result_fd = int(request["result_fd"])

    cpu = int(limits["cpu_s"])
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    mem = int(limits["memory_mb"]) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    fsize = int(limits["file_mb"]) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    resource.setrlimit(resource.RLIMIT_NOFILE, (int(limits["nofile"]),) * 2)
    # No core dump, also where core_pattern pipes dumps to a root helper (which
    # ignores a limit of 0 but aborts on the special value 1); the cell can change
    # neither this nor its dumpability (seccomp).
    resource.setrlimit(resource.RLIMIT_CORE, (1, 1))
    os.chdir(request["workdir"])

    active: dict = {"rlimits": True}
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    active["netns"] = bool(layers.get("netns")) and isolate_network(libc)
    libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    active["seccomp"] = install_seccomp(libc) if layers.get("seccomp") else None
    if layers.get("audit"):
        sys.addaudithook(make_audit_hook(request["workdir"], tuple(request.get("also_writable", ()))))
    active["audit"] = bool(layers.get("audit"))
    _report(result_fd, {"kind": "ready", "layers": active})

    # The cells run in a module of their own: this file's globals are not __main__.
    cell_module = types.ModuleType("__main__")
    sys.modules["__main__"] = cell_module
    namespace = cell_module.__dict__
    bridge = None
    if request.get("tools"):
        bridge = ToolBridge(request["tools"], int(request["request_fd"]), int(request["response_fd"]), limits)
        namespace.update(bridge.functions())
    result: dict = {"kind": "result", "replay_errors": []}
    sink = _Bounded(10_000)
    sys.stdout = sys.stderr = sink
    for n, cell in enumerate(request["cells"], 1):
        if bridge:
            bridge.begin_cell(replaying=True)
        try:
            run_cell(cell, f"<cell-{n}>", namespace)
        except BaseException as exc:  # noqa: BLE001 - report, keep going
            result["replay_errors"].append(f"cell {n}: {type(exc).__name__}: {exc}")
    out = _Bounded(int(limits["max_output"]))
    err = _Bounded(int(limits["max_output"]))
    sys.stdout, sys.stderr = out, err
    name = f"<cell-{len(request['cells']) + 1}>"
    if bridge:
        bridge.begin_cell(replaying=False)
    try:
        value = run_cell(request["code"], name, namespace)
        result["ok"] = True
        if value is not None:
            text = repr(value)
            limit = int(limits["max_output"])
            result["value"] = text if len(text) <= limit else text[:limit] + "…"
    except SystemExit as exc:
        result["ok"] = True
        result["exit"] = exc.code if isinstance(exc.code, int) or exc.code is None else str(exc.code)
    except BaseException as exc:  # noqa: BLE001 - the traceback is the observation
        result["ok"] = False
        try:
            result["error"] = _cell_traceback(exc)
        except MemoryError:
            result["error"] = f"{type(exc).__name__}: {exc}"
    sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
    result["stdout"] = out.getvalue()
    result["stderr"] = err.getvalue()
    _report(result_fd, result)


if __name__ == "__main__":
    main()
