"""CodeAct-style Python execution in a separate, contained process.

The boundary is the operating system. In the default ``isolated`` mode each call
starts a fresh interpreter (``sandbox_child.py``) under bubblewrap (``bwrap``):
- its own PID, mount, IPC, UTS, cgroup and network namespaces (no interface is
  up; the caller's processes and ``/proc`` entries do not exist in its view);
- a file system that holds only the interpreter's paths, read-only, a private
  ``/proc`` and ``/dev``, and two size-limited tmpfs folders (``/sandbox``, the
  working folder, and ``/tmp``) that vanish with it: nothing of the host is
  writable and nothing but the interpreter is readable;
- an unprivileged user: where the caller is root, ``setpriv`` drops to uid/gid
  65534 with no groups, no capabilities and ``no_new_privs`` before Python starts
  (bubblewrap runs without a user namespace then, so that the uid is a real one
  and not root-in-a-namespace); any other caller stays itself, in a user
  namespace;
- inside that, the child's own layers (rlimits, an allow-list seccomp filter, an
  audit hook), and a clean environment.
The parent reads stdout, stderr and the child's report through pipes with byte
limits, under a wall-clock deadline, and never parses the cell's stdout.

Where bubblewrap cannot run, the tool refuses (``SandboxUnavailable``) unless the
user opts into the weak ``process`` mode (``AUTOACT_SANDBOX=process``): the same
child without namespaces or the uid change, which every observation flags.

State persists within an episode by replaying the episode's earlier successful
cells before the new one, with their output discarded; that keeps the session a
plain list of strings, which ``get_state()`` can serialise. Replayed cells run
again, so side effects and randomness repeat rather than carry over.

The tool bridge (``tools={name: callable}``) makes each name a function in the
cell (``retrieve("Velmora")``) that the caller answers: the child writes one JSON
line ``{"id", "tool", "argument", "replay"}`` on a request pipe and blocks on a
response pipe for ``{"id", "ok", "answer"}`` (or ``{"id", "ok": false, "error"}``).
The caller serves one call at a time in a worker thread while it keeps reading the
output under the same deadline. The cell can write anything on the request pipe,
so the caller trusts nothing in a request: unknown names, wrong types, oversized
arguments and garbage get an error answer; an overlong line or more calls than
``tool_calls`` per cell (replayed cells included) stop the code. Replayed cells
call their tools again (fine for deterministic tools); their calls are left out of
``SandboxResult.tool_calls``.
"""

from __future__ import annotations

import functools
import json
import keyword
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

__all__ = [
    "SandboxLimits", "SandboxResult", "SandboxUnavailable", "PythonSandbox", "run_python",
    "strip_code_fences", "sandbox_support", "ensure_python_tool", "ISOLATED", "PROCESS",
]

CHILD = Path(__file__).with_name("sandbox_child.py")
_FENCE_OPEN = ("```python", "```py", "```")
ISOLATED, PROCESS = "isolated", "process"
MODE_VARIABLE = "AUTOACT_SANDBOX"
NOBODY = 65534  # the unprivileged uid/gid a root caller's cells run as
WORKDIR = "/sandbox"  # the working folder inside the isolated view
CHILD_PATH = "/opt/autoact/sandbox_child.py"
WEAK_NOTICE = (
    "[sandbox: weak 'process' mode, chosen with AUTOACT_SANDBOX=process: this code ran without "
    "namespaces or an unprivileged user; it is not contained]"
)


class SandboxUnavailable(RuntimeError):
    """The isolated sandbox cannot run here and the weak mode was not chosen."""


@dataclass(frozen=True)
class SandboxLimits:
    cpu_s: int = 10
    wall_s: float = 20.0
    memory_mb: int = 1024
    file_mb: int = 16
    nofile: int = 256
    max_output: int = 2000
    folder_mb: int = 64  # size of the private working folder (isolated mode)
    raw_output_bytes: int = 1 << 20  # bytes the parent reads from stdout/stderr before it stops the code
    tool_calls: int = 50  # bridged tool calls per cell
    tool_argument_chars: int = 2000
    tool_answer_chars: int = 20000  # longer answers are cut

    @property
    def tool_request_bytes(self) -> int:
        """Longest request line the caller reads: the argument JSON-escaped (up to
        12 bytes a character, for a surrogate pair) plus the other fields."""
        return 12 * self.tool_argument_chars + 1024

    @property
    def report_bytes(self) -> int:
        """Most bytes the child's report may take: its fields are bounded by
        ``max_output``, so anything larger was written by the code itself."""
        return 65536 + 16 * self.max_output


@dataclass
class SandboxResult:
    # "ok" | "error" | "timeout" | "cpu-limit" | "killed" | "crashed" | "output-limit" | "tool-limit"
    status: str
    stdout: str = ""
    stderr: str = ""
    value: str | None = None
    error: str | None = None
    duration_s: float = 0.0
    layers: dict[str, Any] = field(default_factory=dict)
    replay_errors: list[str] = field(default_factory=list)
    isolation: str = ISOLATED
    # the new cell's bridged calls: {"tool", "argument", "answer"} (answer cut to max_output)
    tool_calls: list[dict[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def observation(self) -> str:
        """What the agent sees: stdout, the last expression's value, the error."""
        parts = [WEAK_NOTICE] if self.isolation == PROCESS else []
        if self.stdout.strip():
            parts.append(self.stdout.rstrip())
        if self.stderr.strip():
            parts.append("[stderr]\n" + self.stderr.rstrip())
        if self.value is not None:
            parts.append(f"Out: {self.value}")
        if self.error:
            parts.append(self.error)
        if len(parts) == (self.isolation == PROCESS):
            parts.append("(no output; print() a value or end the code with an expression)")
        return "\n".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def strip_code_fences(code: str) -> str:
    text = code.strip()
    for opener in _FENCE_OPEN:
        if text.startswith(opener) and text.endswith("```") and len(text) > len(opener) + 2:
            return text[len(opener) : -3].strip("\n")
    return code


def _child_env(workdir: str) -> dict[str, str]:
    # A clean environment: nothing of the parent's secrets or settings leaks in.
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": workdir,
        "TMPDIR": workdir,
        "LANG": "C.UTF-8",
        "PYTHONHASHSEED": "0",  # replayed cells see the same set/dict-of-str order
        "PYTHONIOENCODING": "utf-8",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }


def resolve_mode(mode: str | None = None) -> str:
    chosen = (mode or os.environ.get(MODE_VARIABLE) or ISOLATED).strip().lower()
    if chosen not in (ISOLATED, PROCESS):
        raise ValueError(f"{MODE_VARIABLE}={chosen!r}: choose {ISOLATED!r} (default) or {PROCESS!r}")
    return chosen


def _interpreter_paths() -> list[str]:
    """What the child interpreter needs to read: /usr (system libraries) and the
    Python installation and environment, wherever they live."""
    paths = []
    for p in (sys.base_prefix, sys.prefix, os.path.dirname(os.path.realpath(sys.executable))):
        real = os.path.realpath(p)
        if not real.startswith("/usr/") and real != "/usr" and real not in paths:
            paths.append(real)
    # an environment under another: the outer bind covers it
    return [p for p in paths if not any(p != q and p.startswith(q + "/") for q in paths)]


def _bwrap_command(limits: SandboxLimits) -> list[str]:
    bwrap = shutil.which(os.environ.get("AUTOACT_BWRAP", "bwrap"))
    if bwrap is None:
        raise SandboxUnavailable("bubblewrap (bwrap) is not installed")
    root = os.geteuid() == 0
    cmd = [bwrap, "--die-with-parent", "--new-session", "--unshare-pid", "--unshare-net",
           "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try", "--hostname", "sandbox"]
    if not root:  # an ordinary user needs a user namespace to make the others
        cmd += ["--unshare-user", "--disable-userns"]
    cmd += ["--ro-bind", "/usr", "/usr"]
    for top in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        host = f"/{top}"
        if os.path.islink(host):
            cmd += ["--symlink", os.readlink(host), host]
        elif os.path.isdir(host):
            cmd += ["--ro-bind", host, host]
    # The private tmpfs folders first: mounted after the binds, /tmp would hide an
    # interpreter (a clone, a virtual environment) that lives under /tmp.
    cmd += ["--size", str(16 << 20), "--perms", "1777", "--tmpfs", "/tmp",
            "--size", str(limits.folder_mb << 20), "--perms", "0777", "--tmpfs", WORKDIR]
    binds = [(path, path) for path in _interpreter_paths()]
    if os.path.exists("/etc/ld.so.cache"):
        binds.append(("/etc/ld.so.cache", "/etc/ld.so.cache"))
    binds.append((str(CHILD), CHILD_PATH))
    made: set[str] = set()
    for source, target in binds:
        # bubblewrap would make the missing parents root-only (0700): make them
        # traversable, or the unprivileged user could not reach the interpreter
        parents = Path(target).parents
        for parent in reversed([str(p) for p in parents if str(p) != "/"]):
            if parent not in made:
                made.add(parent)
                cmd += ["--perms", "0755", "--dir", parent]
        cmd += ["--ro-bind", source, target]
    # /dev holds only the harmless character devices: bubblewrap's --dev would add
    # /dev/ptmx, through which a cell could drain the host's pseudo-terminals
    cmd += ["--proc", "/proc", "--perms", "0755", "--dir", "/dev"]
    for device in ("null", "zero", "full", "random", "urandom"):
        cmd += ["--dev-bind", f"/dev/{device}", f"/dev/{device}"]
    for fd, name in enumerate(("stdin", "stdout", "stderr")):
        cmd += ["--symlink", f"/proc/self/fd/{fd}", f"/dev/{name}"]
    cmd += ["--symlink", "/proc/self/fd", "/dev/fd", "--chdir", WORKDIR, "--clearenv"]
    for key, value in _child_env(WORKDIR).items():
        cmd += ["--setenv", key, value]
    cmd.append("--")
    if root:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            raise SandboxUnavailable("setpriv (util-linux) is needed to drop root to an unprivileged user")
        cmd += [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs"]
    return cmd + [sys.executable, "-P", "-s", "-B", CHILD_PATH]


@functools.lru_cache(maxsize=1)
def sandbox_support() -> tuple[bool, str]:
    """Whether the isolated mode works on this machine, and why not (cached)."""
    try:
        result = run_python("1 + 1", limits=SandboxLimits(wall_s=30), isolation=ISOLATED, _probe=True)
    except SandboxUnavailable as exc:
        return False, str(exc)
    if result.ok and result.value == "2":
        return True, "bubblewrap namespaces, unprivileged user, seccomp allow-list"
    detail = (result.error or result.stderr or result.status).strip().splitlines()
    return False, "bubblewrap could not start the sandbox: " + (detail[-1] if detail else result.status)


def require_isolation() -> None:
    ok, reason = sandbox_support()
    if not ok:
        raise SandboxUnavailable(
            f"the Python sandbox cannot isolate code here ({reason}). Install bubblewrap "
            "(`apt-get install bubblewrap`; Linux with user, PID, mount and network namespaces and "
            f"seccomp), or run with {MODE_VARIABLE}=process to accept a weak sandbox that is not a "
            "boundary (each observation will say so)."
        )


def ensure_python_tool() -> None:
    """Refuse a run that offers the Python tool where its sandbox cannot isolate
    code, unless the weak mode was chosen (called when a run's tools are set up)."""
    if resolve_mode() == ISOLATED:
        require_isolation()


def run_python(
    code: str,
    prior_cells: list[str] | tuple[str, ...] = (),
    limits: SandboxLimits | None = None,
    layers: dict[str, bool] | None = None,
    isolation: str | None = None,
    tools: dict[str, Callable[[str], str]] | None = None,
    _probe: bool = False,
) -> SandboxResult:
    """Run ``code`` after replaying ``prior_cells`` in a fresh sandboxed process.

    ``layers`` switches the child's own layers (``seccomp``, ``audit``, ``netns``),
    for tests that show each one alone; the namespaces of the isolated mode stay.
    ``tools``: functions the cell may call by name, answered here (see the module
    notes); each takes the argument string and returns text."""
    limits = limits or SandboxLimits()
    _check_tool_names(tools)
    mode = resolve_mode(isolation)
    if mode == ISOLATED:
        if not _probe:
            require_isolation()
        command, workdir, cleanup, also_writable = _bwrap_command(limits), WORKDIR, None, ["/tmp"]
        layers = {"netns": False, "seccomp": True, "audit": True, **(layers or {})}
    else:
        cleanup = workdir = tempfile.mkdtemp(prefix="autoact-py-")
        also_writable = []
        command = [sys.executable, "-P", "-s", "-B", str(CHILD)]
        layers = {"netns": True, "seccomp": True, "audit": True, **(layers or {})}
    result_r, result_w = os.pipe()
    request = {"code": code, "cells": list(prior_cells), "limits": asdict(limits), "layers": layers,
               "workdir": workdir, "also_writable": also_writable, "result_fd": result_w}
    parent_ends, child_ends = [result_r], [result_w]
    if tools:
        tool_request_r, tool_request_w = os.pipe()
        tool_response_r, tool_response_w = os.pipe()
        parent_ends += [tool_request_r, tool_response_w]
        child_ends += [tool_request_w, tool_response_r]
        request.update(tools=sorted(tools), request_fd=tool_request_w, response_fd=tool_response_r)
    start = time.perf_counter()
    try:
        proc = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cleanup or "/",
            env=_child_env(workdir),
            pass_fds=tuple(child_ends),
            start_new_session=True,  # its own process group, so a timeout kills all of it
        )
    except OSError as exc:
        for fd in parent_ends + child_ends:
            os.close(fd)
        if cleanup:
            shutil.rmtree(cleanup, ignore_errors=True)
        raise SandboxUnavailable(f"could not start the sandbox: {exc}") from exc
    for fd in child_ends:
        os.close(fd)
    server = _ToolServer(tools, limits, tool_request_r, tool_response_w, len(prior_cells)) if tools else None
    try:
        streams = _collect(proc, json.dumps(request).encode(), result_r, limits, server)
    finally:
        if server:
            server.close()
        if proc.poll() is None:
            _kill_group(proc)
            proc.wait()
        if cleanup:
            shutil.rmtree(cleanup, ignore_errors=True)
    result = _interpret(proc.returncode, streams, limits, time.perf_counter() - start, mode)
    result.isolation = mode
    if server:
        result.tool_calls = server.calls
    if mode == ISOLATED:
        # bubblewrap made the network namespace (the child's own netns layer is off)
        result.layers = {"namespaces": True, "unprivileged_user": True, **result.layers, "netns": True}
    return result


def _collect(proc: subprocess.Popen, request: bytes, result_fd: int, limits: SandboxLimits,
             server: _ToolServer | None = None) -> dict:
    """Feed the request, then read stdout, stderr and the report with byte limits
    and the wall-clock deadline (serving tool calls meanwhile); stop the process on
    either, or on a tool request past the bridge's bounds."""
    try:
        proc.stdin.write(request)
        proc.stdin.close()
    except (BrokenPipeError, OSError):
        pass
    deadline = time.monotonic() + limits.wall_s
    chunks = {"stdout": [], "stderr": [], "report": []}
    sizes = dict.fromkeys(chunks, 0)
    outcome = None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ, "stdout")
    sel.register(proc.stderr, selectors.EVENT_READ, "stderr")
    report = os.fdopen(result_fd, "rb", buffering=0)
    sel.register(report, selectors.EVENT_READ, "report")
    open_streams = set(chunks)
    try:
        while open_streams:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                outcome = "timeout"
                break
            if server:
                server.register(sel)
            for key, _ in sel.select(timeout=min(remaining, 1.0)):
                if key.data in _ToolServer.EVENTS:
                    server.on_event(key.data, sel)
                    continue
                data = os.read(key.fileobj.fileno(), 65536)
                if not data:
                    sel.unregister(key.fileobj)
                    open_streams.discard(key.data)
                    continue
                chunks[key.data].append(data)
                sizes[key.data] += len(data)
                cap = limits.report_bytes if key.data == "report" else limits.raw_output_bytes
                if sizes[key.data] > cap:
                    outcome = "output-limit"
            if server and not outcome:
                server.next_request()
                outcome = "tool-limit" if server.stopped else None
            if outcome:
                break
        if outcome:
            _kill_group(proc)
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()) if not outcome else 5)
        except subprocess.TimeoutExpired:
            outcome = "timeout"
            _kill_group(proc)
            proc.wait()
    finally:
        sel.close()
        report.close()
        proc.stdout.close()
        proc.stderr.close()
    return {"outcome": outcome, "running_tool": server.running_tool if server else None,
            "tool_stop": server.stopped if server else None, **{k: b"".join(v) for k, v in chunks.items()}}


# ---- the tool bridge: the caller's end -----------------------------------------------------
def _check_tool_names(tools: dict[str, Callable[[str], str]] | None) -> None:
    for name, fn in (tools or {}).items():
        if not (isinstance(name, str) and name.isidentifier() and not keyword.iskeyword(name)):
            raise ValueError(f"a bridged tool needs a Python identifier as its name, not {name!r}")
        if not callable(fn):
            raise TypeError(f"the bridged tool {name!r} is not callable")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f"… ({len(text) - limit} more characters)"


class _ToolServer:
    """Answers the cell's tool requests, one at a time, without ever blocking the
    read loop: a call runs in a daemon thread (one that outlives the deadline is
    abandoned with the process), answers go out on a non-blocking pipe, and no
    further request is read while one is running or its answer is unsent."""

    def __init__(self, tools: dict[str, Callable[[str], str]], limits: SandboxLimits, request_fd: int,
                 response_fd: int, replayed_cells: int):
        self.tools, self.limits = dict(tools), limits
        self.request_fd, self.response_fd = request_fd, response_fd
        os.set_blocking(response_fd, False)
        # replayed cells call their tools again: the bound covers every cell of the run
        self.max_calls = limits.tool_calls * (replayed_cells + 1)
        self.received = 0
        self.unread = bytearray()  # bytes read from the request pipe, not yet handled
        self.unsent = bytearray()  # answers not yet written
        self.request_closed = False
        self.running: dict | None = None  # the call in flight: id, tool, argument, replay, wake fd, outcome
        self.stopped: str | None = None  # why the code must be stopped
        self.calls: list[dict[str, str]] = []

    @property
    def running_tool(self) -> str | None:
        return self.running["tool"] if self.running else None

    # -- the selector's view: what to wait for now
    def register(self, sel: selectors.BaseSelector) -> None:
        wanted = {}
        if not self.request_closed and not self.running and not self.unsent and b"\n" not in self.unread:
            wanted[self.request_fd] = "request"
        if self.unsent:
            wanted[self.response_fd] = "response"
        if self.running:
            wanted[self.running["wake"]] = "tool-done"
        registered = {key.fd: key.data for key in sel.get_map().values() if key.data in self.EVENTS}
        for fd, kind in registered.items():
            if wanted.get(fd) != kind:
                sel.unregister(fd)
        for fd, kind in wanted.items():
            if registered.get(fd) != kind:
                sel.register(fd, selectors.EVENT_WRITE if kind == "response" else selectors.EVENT_READ, kind)

    # -- events
    EVENTS = ("request", "response", "tool-done")

    def on_event(self, kind: str, sel: selectors.BaseSelector) -> None:
        if kind == "request":
            self.read_requests()
        elif kind == "response":
            self.write_answers()
        else:
            # out of the selector before it is closed: a reused descriptor number
            # would otherwise look registered while epoll had dropped it
            sel.unregister(self.running["wake"])
            self.call_done()

    def read_requests(self) -> None:
        data = os.read(self.request_fd, 65536)
        if not data:
            self.request_closed = True
            return
        self.unread += data
        if len(self.unread) - (self.unread.rfind(b"\n") + 1) > self.limits.tool_request_bytes:
            self.stopped = f"a tool request was longer than {self.limits.tool_request_bytes} bytes"

    def write_answers(self) -> None:
        try:
            sent = os.write(self.response_fd, self.unsent[:65536])
        except BlockingIOError:
            return
        except OSError:  # the child closed its end: nobody reads the answers any more
            sent = len(self.unsent)
        del self.unsent[:sent]

    def call_done(self) -> None:
        call, self.running = self.running, None
        os.close(call["wake"])
        answer = _clip(call["outcome"].get("answer", f"{call['tool']} failed"), self.limits.tool_answer_chars)
        if not call["replay"]:
            self.calls.append({"tool": call["tool"], "argument": call["argument"],
                               "answer": _clip(answer, self.limits.max_output)})
        self._answer({"id": call["id"], "ok": True, "answer": answer})

    # -- requests
    def next_request(self) -> None:
        """Handle the next complete request line, if nothing is in flight."""
        if self.running or self.unsent or self.stopped or b"\n" not in self.unread:
            return
        line, _, rest = bytes(self.unread).partition(b"\n")
        self.unread = bytearray(rest)
        self.received += 1
        if self.received > self.max_calls:
            self.stopped = f"more than {self.limits.tool_calls} tool calls in a cell"
            return
        request, problem = self._parse(line)
        if problem:
            self._answer({"id": request.get("id"), "ok": False, "error": problem})
        else:
            self._start(request)

    def _parse(self, line: bytes) -> tuple[dict, str | None]:
        """The request if it is well formed, else what is wrong with it (never raises)."""
        if len(line) > self.limits.tool_request_bytes:
            return {}, f"the tool request is longer than {self.limits.tool_request_bytes} bytes"
        try:
            request = json.loads(line)
        except Exception:  # noqa: BLE001 - invalid, too deep, too many digits: whatever the cell wrote
            return {}, "the tool request is not valid JSON"
        if not isinstance(request, dict):
            return {}, "the tool request is not a JSON object"
        request_id = request.get("id")
        if not isinstance(request_id, int) or isinstance(request_id, bool):
            return {}, "the tool request has no integer id"
        clean = {"id": request_id}
        tool, argument, replay = request.get("tool"), request.get("argument"), request.get("replay", False)
        if not isinstance(tool, str) or tool not in self.tools:
            return clean, f"unknown tool {str(tool)[:50]!r}; the tools are: {', '.join(sorted(self.tools))}"
        if not isinstance(argument, str):
            return clean, f"the argument of {tool} must be a string"
        if len(argument) > self.limits.tool_argument_chars:
            return clean, f"the argument of {tool} is longer than {self.limits.tool_argument_chars} characters"
        return {**clean, "tool": tool, "argument": argument, "replay": replay is True}, None

    def _start(self, request: dict) -> None:
        wake_r, wake_w = os.pipe()
        outcome: dict[str, str] = {}
        fn, name, argument = self.tools[request["tool"]], request["tool"], request["argument"]

        def work() -> None:
            try:
                answer = fn(argument)
                outcome["answer"] = answer if isinstance(answer, str) else str(answer)
            except Exception as exc:  # noqa: BLE001 - a failing tool is an answer the cell can read
                outcome["answer"] = f"{name} failed: {type(exc).__name__}: {exc}"
            finally:
                # the worker alone writes and closes its end, so a late wake-up can never
                # reach a descriptor number that was reused after the run
                try:
                    os.write(wake_w, b"x")
                except OSError:
                    pass
                os.close(wake_w)

        self.running = {**request, "wake": wake_r, "outcome": outcome}
        threading.Thread(target=work, name=f"sandbox-tool-{name}", daemon=True).start()

    def _answer(self, message: dict) -> None:
        self.unsent += json.dumps(message).encode() + b"\n"

    def close(self) -> None:
        for fd in (self.request_fd, self.response_fd, *([self.running["wake"]] if self.running else [])):
            try:
                os.close(fd)
            except OSError:
                pass
        self.running = None


def _decode(data: bytes, limit: int) -> str:
    return data[: limit * 4].decode("utf-8", errors="replace")[:limit]


def _interpret(code: int, streams: dict, limits: SandboxLimits, duration: float, mode: str) -> SandboxResult:
    raw_out = _decode(streams["stdout"], limits.max_output).strip()  # written past sys.stdout
    stderr = _decode(streams["stderr"], limits.max_output)
    if streams["outcome"] == "timeout":
        waiting = f" (waiting for the tool {streams['running_tool']})" if streams.get("running_tool") else ""
        return SandboxResult("timeout", stdout=raw_out, duration_s=duration,
                             error=f"TimeoutError: the code ran longer than {limits.wall_s:g} s{waiting} "
                             "and was stopped")
    if streams["outcome"] == "tool-limit":
        return SandboxResult("tool-limit", stdout=raw_out,
                             error=f"ToolLimitError: {streams['tool_stop']}; the code was stopped", duration_s=duration)
    if streams["outcome"] == "output-limit":
        return SandboxResult("output-limit", stdout=raw_out,
                             error=f"OutputError: the code wrote more than {limits.raw_output_bytes} bytes "
                             "and was stopped", duration_s=duration)
    try:
        ready, final, problem = _parse_report(streams["report"])
    except Exception as exc:  # noqa: BLE001 - whatever the code wrote there, never raise in the caller
        ready, final, problem = None, None, f"its report could not be read ({type(exc).__name__})"
    signal_number = -code if code < 0 else (code - 128 if mode == ISOLATED and code > 128 else 0)
    if final is None or problem:
        result = _abnormal_exit(signal_number, code, raw_out, stderr, limits, duration, problem)
        result.layers = (ready or {}).get("layers", {})
        return result
    out = final["stdout"]
    if raw_out:
        out = (raw_out + "\n" + out) if out else raw_out
    return SandboxResult(
        "ok" if final["ok"] else "error",
        stdout=out[: limits.max_output * 2],
        stderr=final["stderr"][: limits.max_output * 2],
        value=None if final["value"] is None else final["value"][: limits.max_output + 1],
        error=None if final["error"] is None else final["error"][: limits.max_output * 4],
        duration_s=duration,
        layers=ready["layers"],
        replay_errors=final["replay_errors"][:50],
    )


def _parse_report(data: bytes) -> tuple[dict | None, dict | None, str | None]:
    """The child's report: exactly a ``ready`` line, then at most one ``result`` line."""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    try:
        messages = [json.loads(line) for line in lines]
    except ValueError:
        return None, None, "its report was not valid JSON"
    if not messages or not isinstance(messages[0], dict) or messages[0].get("kind") != "ready" \
            or not isinstance(messages[0].get("layers"), dict):
        return None, None, "it did not report its start"
    ready, rest = messages[0], messages[1:]
    ready = {"layers": {str(k): v for k, v in ready["layers"].items() if isinstance(v, (bool, str, type(None)))}}
    if not rest:
        return ready, None, None
    final = rest[0]
    if len(rest) > 1 or not isinstance(final, dict) or final.get("kind") != "result":
        return ready, None, "its report was malformed (written by the code itself?)"
    checked = {  # field -> (types it may have, default)
        "ok": ((bool,), None), "stdout": ((str,), ""), "stderr": ((str,), ""),
        "value": ((str, type(None)), None), "error": ((str, type(None)), None), "replay_errors": ((list,), []),
    }
    clean = {}
    for key, (types, default) in checked.items():
        value = final.get(key, default)
        if not isinstance(value, types) or (key == "replay_errors" and not all(isinstance(e, str) for e in value)):
            return ready, None, f"its report was malformed ({key!r} is {type(value).__name__})"
        clean[key] = value
    return ready, clean, None


def _abnormal_exit(signal_number: int, code: int, stdout: str, stderr: str, limits: SandboxLimits,
                   duration: float, problem: str | None) -> SandboxResult:
    if signal_number in (signal.SIGXCPU, signal.SIGKILL) and duration >= limits.cpu_s * 0.5:
        return SandboxResult(
            "cpu-limit",
            stdout=stdout,
            error=f"TimeoutError: the code used more than {limits.cpu_s} s of CPU time and was stopped",
            duration_s=duration,
        )
    if signal_number > 0:
        name = signal.Signals(signal_number).name if signal_number in signal.Signals._value2member_map_ \
            else str(signal_number)
        return SandboxResult(
            "killed",
            stdout=stdout,
            error=f"The process was killed by {name} (memory limit {limits.memory_mb} MB, file limit {limits.file_mb} MB)",
            duration_s=duration,
        )
    tail = stderr.strip().splitlines()[-5:]
    reason = problem or f"exit status {code}"
    return SandboxResult(
        "crashed",
        stdout=stdout,
        error=f"The interpreter exited without a result ({reason})" + (":\n" + "\n".join(tail) if tail else ""),
        duration_s=duration,
    )


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class PythonSandbox:
    """One episode's Python session: the successful cells so far, replayed each call.
    ``tools`` are bridged into every cell (not part of the saved state: the caller
    passes them again when it rebuilds the session)."""

    def __init__(self, limits: SandboxLimits | None = None, layers: dict[str, bool] | None = None,
                 cells: list[str] | None = None, isolation: str | None = None,
                 tools: dict[str, Callable[[str], str]] | None = None):
        _check_tool_names(tools)
        self.limits = limits or SandboxLimits()
        self.layers = layers
        self.isolation = isolation  # None: AUTOACT_SANDBOX, else isolated
        self.cells: list[str] = list(cells or [])
        self.tools = dict(tools or {})

    def run(self, code: str) -> SandboxResult:
        code = strip_code_fences(code)
        result = run_python(code, self.cells, self.limits, self.layers, self.isolation, tools=self.tools or None)
        if result.ok:
            self.cells.append(code)
        return result

    def reset(self) -> None:
        self.cells.clear()

    def get_state(self) -> dict[str, Any]:
        return {"cells": list(self.cells)}

    def set_state(self, state: dict[str, Any]) -> None:
        self.cells = [str(c) for c in (state or {}).get("cells", [])]
