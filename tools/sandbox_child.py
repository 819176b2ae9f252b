"""The sandboxed interpreter: run as a separate process by ``sandbox.py``.

It reads one JSON request on stdin, locks itself down, replays the episode's
earlier cells (output discarded) so that their variables exist, runs the new
cell and prints one JSON result line after a marker the parent chose.

Lock-down, in order (each layer still holds when running as root):
1. resource limits: CPU seconds, address space, file size, open files, no core;
2. a private network namespace (``unshare(CLONE_NEWNET)``; no interface is up,
   so nothing can be reached), where the kernel allows it;
3. a seccomp filter: no fork/vfork/clone of processes (threads are allowed),
   no exec, no sockets other than AF_UNIX, no signals to other processes;
4. an audit hook (``sys.addaudithook``, which cannot be removed): refuses process
   creation, network sockets, writes outside the working folder and ctypes calls.

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
import traceback

CLONE_NEWNET = 0x40000000
CLONE_NEWUSER = 0x10000000
CLONE_THREAD = 0x00010000

# ---- seccomp ------------------------------------------------------------------------
_SYSCALLS = {
    "x86_64": {
        "arch": 0xC000003E,
        "fork": 57, "vfork": 58, "clone": 56, "clone3": 435, "execve": 59, "execveat": 322,
        "socket": 41, "kill": 62, "tkill": 200, "tgkill": 234, "ptrace": 101,
    },
    "aarch64": {
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
OFF_NR, OFF_ARCH, OFF_ARG0 = 0, 4, 16


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


def _seccomp_program(table: dict[str, int], pid: int) -> list[tuple[int, int, int, int]]:
    def stmt(code, k):
        return (code, 0, 0, k)

    def jump(code, k, jt, jf):
        return (code, jt, jf, k)

    prog = [
        stmt(BPF_LD_W_ABS, OFF_ARCH),
        jump(BPF_JEQ_K, table["arch"], 1, 0),
        stmt(BPF_RET_K, RET_ALLOW),  # another ABI: the audit hook still applies
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
    prog.append(stmt(BPF_RET_K, RET_ALLOW))
    return prog


def install_seccomp(libc) -> bool:
    table = _SYSCALLS.get(platform.machine())
    if table is None:
        return False
    program = _seccomp_program(table, os.getpid())
    filters = (_SockFilter * len(program))(*[_SockFilter(c, jt, jf, k) for c, jt, jf, k in program])
    fprog = _SockFprog(len(program), filters)
    PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        return False
    return libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) == 0


def isolate_network(libc) -> bool:
    if libc.unshare(CLONE_NEWNET) == 0:
        return True
    return libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0  # unprivileged users


# ---- audit hook ------------------------------------------------------------------------
_PROCESS_EVENTS = {
    "os.fork", "os.forkpty", "os.system", "os.exec", "os.posix_spawn", "os.spawn",
    "subprocess.Popen", "pty.spawn", "os.startfile",
}
_NETWORK_EVENTS = {
    "socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg", "socket.getaddrinfo",
    "socket.gethostbyname", "socket.gethostbyaddr", "socket.gethostname",
}
_CTYPES_EVENTS = {
    "ctypes.dlopen", "ctypes.dlsym", "ctypes.dlsym/handle", "ctypes.call_function",
    "ctypes.cdata", "ctypes.string_at", "ctypes.wstring_at", "ctypes.PyObj_FromPtr",
}
_PATH_EVENTS = {  # event -> positions of path arguments that get modified
    "os.remove": (0,), "os.rmdir": (0,), "os.mkdir": (0,), "os.rename": (0, 1),
    "os.symlink": (1,), "os.link": (1,), "os.truncate": (0,), "os.chmod": (0,),
    "os.chown": (0,), "os.utime": (0,), "os.chflags": (0,), "os.lchflags": (0,),
    "os.setxattr": (0,), "os.removexattr": (0,), "shutil.rmtree": (0,),
}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC


def make_audit_hook(workdir: str):
    root = os.path.realpath(workdir)
    allowed_files = {"/dev/null"}
    pid = os.getpid()
    realpath, fspath, join = os.path.realpath, os.fspath, os.path.join

    def inside(path) -> bool:
        if isinstance(path, int):  # an open descriptor: checked when it was opened
            return True
        try:
            text = fspath(path)
        except TypeError:
            return False
        if isinstance(text, bytes):
            text = text.decode(errors="surrogateescape")
        full = realpath(text if text.startswith("/") else join(os.getcwd(), text))
        return full in allowed_files or full == root or full.startswith(root + os.sep)

    def hook(event: str, args: tuple) -> None:
        if event == "open":
            path, mode, flags = (tuple(args) + (None, None, 0))[:3]
            writing = bool(flags and flags & _WRITE_FLAGS) or (
                isinstance(mode, str) and any(c in mode for c in "wax+")
            )
            if writing and path is not None and not inside(path):
                raise PermissionError(f"writing outside the sandbox folder is not allowed: {path}")
        elif event in _PATH_EVENTS:
            for i in _PATH_EVENTS[event]:
                if i < len(args) and args[i] is not None and not inside(args[i]):
                    raise PermissionError(f"changing files outside the sandbox folder is not allowed: {args[i]}")
        elif event in _PROCESS_EVENTS:
            raise PermissionError("starting processes is not allowed in the sandbox")
        elif event in ("os.kill", "os.killpg"):
            if event == "os.killpg" or args[0] != pid:
                raise PermissionError("signalling other processes is not allowed in the sandbox")
        elif event == "socket.__new__":
            if len(args) > 1 and args[1] not in (socket.AF_UNIX, -1):
                raise PermissionError("network access is not allowed in the sandbox")
        elif event in _NETWORK_EVENTS:
            raise PermissionError("network access is not allowed in the sandbox")
        elif event in _CTYPES_EVENTS:
            raise PermissionError("ctypes is not allowed in the sandbox")

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


def main() -> None:
    request = json.loads(sys.stdin.read())
    limits = request["limits"]
    layers = request["layers"]
    marker = request["marker"]
    real_stdout = sys.stdout

    cpu = int(limits["cpu_s"])
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    mem = int(limits["memory_mb"]) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    fsize = int(limits["file_mb"]) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    resource.setrlimit(resource.RLIMIT_NOFILE, (int(limits["nofile"]),) * 2)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    os.chdir(request["workdir"])

    active = {"rlimits": True}
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    active["netns"] = bool(layers.get("netns")) and isolate_network(libc)
    active["seccomp"] = bool(layers.get("seccomp")) and install_seccomp(libc)
    if layers.get("audit"):
        sys.addaudithook(make_audit_hook(request["workdir"]))
    active["audit"] = bool(layers.get("audit"))

    namespace: dict = {"__name__": "__main__", "__builtins__": __builtins__}
    result: dict = {"layers": active, "replay_errors": []}
    sink = _Bounded(10_000)
    sys.stdout = sys.stderr = sink
    for n, cell in enumerate(request["cells"], 1):
        try:
            run_cell(cell, f"<cell-{n}>", namespace)
        except BaseException as exc:  # noqa: BLE001 - report, keep going
            result["replay_errors"].append(f"cell {n}: {type(exc).__name__}: {exc}")
    out = _Bounded(int(limits["max_output"]))
    err = _Bounded(int(limits["max_output"]))
    sys.stdout, sys.stderr = out, err
    name = f"<cell-{len(request['cells']) + 1}>"
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
    sys.stdout, sys.stderr = real_stdout, sys.__stderr__
    result["stdout"] = out.getvalue()
    result["stderr"] = err.getvalue()
    real_stdout.write("\n" + marker + json.dumps(result) + "\n")
    real_stdout.flush()


if __name__ == "__main__":
    main()
