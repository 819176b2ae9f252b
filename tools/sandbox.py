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
"""

from __future__ import annotations

import functools
import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

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

    @property
    def report_bytes(self) -> int:
        """Most bytes the child's report may take: its fields are bounded by
        ``max_output``, so anything larger was written by the code itself."""
        return 65536 + 16 * self.max_output


@dataclass
class SandboxResult:
    # "ok" | "error" | "timeout" | "cpu-limit" | "killed" | "crashed" | "output-limit"
    status: str
    stdout: str = ""
    stderr: str = ""
    value: str | None = None
    error: str | None = None
    duration_s: float = 0.0
    layers: dict[str, Any] = field(default_factory=dict)
    replay_errors: list[str] = field(default_factory=list)
    isolation: str = ISOLATED

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
    cmd += ["--symlink", "/proc/self/fd", "/dev/fd",
            "--size", str(16 << 20), "--perms", "1777", "--tmpfs", "/tmp",
            "--size", str(limits.folder_mb << 20), "--perms", "0777", "--tmpfs", WORKDIR,
            "--chdir", WORKDIR, "--clearenv"]
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
    _probe: bool = False,
) -> SandboxResult:
    """Run ``code`` after replaying ``prior_cells`` in a fresh sandboxed process.

    ``layers`` switches the child's own layers (``seccomp``, ``audit``, ``netns``),
    for tests that show each one alone; the namespaces of the isolated mode stay."""
    limits = limits or SandboxLimits()
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
    start = time.perf_counter()
    try:
        proc = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cleanup or "/",
            env=_child_env(workdir),
            pass_fds=(result_w,),
            start_new_session=True,  # its own process group, so a timeout kills all of it
        )
    except OSError as exc:
        os.close(result_r)
        os.close(result_w)
        if cleanup:
            shutil.rmtree(cleanup, ignore_errors=True)
        raise SandboxUnavailable(f"could not start the sandbox: {exc}") from exc
    os.close(result_w)
    try:
        streams = _collect(proc, json.dumps(request).encode(), result_r, limits)
    finally:
        if proc.poll() is None:
            _kill_group(proc)
            proc.wait()
        if cleanup:
            shutil.rmtree(cleanup, ignore_errors=True)
    result = _interpret(proc.returncode, streams, limits, time.perf_counter() - start, mode)
    result.isolation = mode
    if mode == ISOLATED:
        # bubblewrap made the network namespace (the child's own netns layer is off)
        result.layers = {"namespaces": True, "unprivileged_user": True, **result.layers, "netns": True}
    return result


def _collect(proc: subprocess.Popen, request: bytes, result_fd: int, limits: SandboxLimits) -> dict:
    """Feed the request, then read stdout, stderr and the report with byte limits
    and the wall-clock deadline; stop the process on either."""
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
    try:
        while sel.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                outcome = "timeout"
                break
            for key, _ in sel.select(timeout=min(remaining, 1.0)):
                data = os.read(key.fileobj.fileno(), 65536)
                if not data:
                    sel.unregister(key.fileobj)
                    continue
                chunks[key.data].append(data)
                sizes[key.data] += len(data)
                cap = limits.report_bytes if key.data == "report" else limits.raw_output_bytes
                if sizes[key.data] > cap:
                    outcome = "output-limit"
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
    return {"outcome": outcome, **{k: b"".join(v) for k, v in chunks.items()}}


def _decode(data: bytes, limit: int) -> str:
    return data[: limit * 4].decode("utf-8", errors="replace")[:limit]


def _interpret(code: int, streams: dict, limits: SandboxLimits, duration: float, mode: str) -> SandboxResult:
    raw_out = _decode(streams["stdout"], limits.max_output).strip()  # written past sys.stdout
    stderr = _decode(streams["stderr"], limits.max_output)
    if streams["outcome"] == "timeout":
        return SandboxResult("timeout", stdout=raw_out,
                             error=f"TimeoutError: the code ran longer than {limits.wall_s:g} s and was stopped",
                             duration_s=duration)
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
    """One episode's Python session: the successful cells so far, replayed each call."""

    def __init__(self, limits: SandboxLimits | None = None, layers: dict[str, bool] | None = None,
                 cells: list[str] | None = None, isolation: str | None = None):
        self.limits = limits or SandboxLimits()
        self.layers = layers
        self.isolation = isolation  # None: AUTOACT_SANDBOX, else isolated
        self.cells: list[str] = list(cells or [])

    def run(self, code: str) -> SandboxResult:
        code = strip_code_fences(code)
        result = run_python(code, self.cells, self.limits, self.layers, self.isolation)
        if result.ok:
            self.cells.append(code)
        return result

    def reset(self) -> None:
        self.cells.clear()

    def get_state(self) -> dict[str, Any]:
        return {"cells": list(self.cells)}

    def set_state(self, state: dict[str, Any]) -> None:
        self.cells = [str(c) for c in (state or {}).get("cells", [])]
