"""CodeAct-style Python execution in a separate, locked-down process.

Every call starts a fresh interpreter (``sandbox_child.py``) in a new temporary
folder with limits on CPU time, memory, file size and wall-clock time, no
network and no child processes (see the child module for the layers). State
persists within an episode by replaying the episode's earlier successful cells
before the new one, with their output discarded; that keeps the session a plain
list of strings, which ``get_state()`` can serialise. Replayed cells run again,
so side effects and randomness repeat rather than carry over.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["SandboxLimits", "SandboxResult", "PythonSandbox", "run_python", "strip_code_fences"]

CHILD = Path(__file__).with_name("sandbox_child.py")
_FENCE_OPEN = ("```python", "```py", "```")


@dataclass(frozen=True)
class SandboxLimits:
    cpu_s: int = 10
    wall_s: float = 20.0
    memory_mb: int = 1024
    file_mb: int = 16
    nofile: int = 256
    max_output: int = 2000


@dataclass
class SandboxResult:
    status: str  # "ok" | "error" | "timeout" | "cpu-limit" | "killed" | "crashed"
    stdout: str = ""
    stderr: str = ""
    value: str | None = None
    error: str | None = None
    duration_s: float = 0.0
    layers: dict[str, bool] = field(default_factory=dict)
    replay_errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def observation(self) -> str:
        """What the agent sees: stdout, the last expression's value, the error."""
        parts = []
        if self.stdout.strip():
            parts.append(self.stdout.rstrip())
        if self.stderr.strip():
            parts.append("[stderr]\n" + self.stderr.rstrip())
        if self.value is not None:
            parts.append(f"Out: {self.value}")
        if self.error:
            parts.append(self.error)
        if not parts:
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


def run_python(
    code: str,
    prior_cells: list[str] | tuple[str, ...] = (),
    limits: SandboxLimits | None = None,
    layers: dict[str, bool] | None = None,
) -> SandboxResult:
    """Run ``code`` after replaying ``prior_cells`` in a fresh sandboxed process."""
    limits = limits or SandboxLimits()
    layers = {"netns": True, "seccomp": True, "audit": True, **(layers or {})}
    marker = "@@sandbox-result-" + secrets.token_hex(8) + "@@"
    workdir = tempfile.mkdtemp(prefix="autoact-py-")
    request = {
        "code": code,
        "cells": list(prior_cells),
        "limits": asdict(limits),
        "layers": layers,
        "marker": marker,
        "workdir": workdir,
    }
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-P", "-s", "-B", str(CHILD)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=workdir,
        env=_child_env(workdir),
        start_new_session=True,  # its own process group, so a timeout kills all of it
        text=True,
        encoding="utf-8",
        errors="replace",
    )
    try:
        stdout, stderr = proc.communicate(json.dumps(request), timeout=limits.wall_s)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        stdout, stderr = proc.communicate()
        return SandboxResult(
            "timeout",
            error=f"TimeoutError: the code ran longer than {limits.wall_s:g} s and was stopped",
            duration_s=time.perf_counter() - start,
        )
    finally:
        if proc.poll() is None:
            _kill_group(proc)
        shutil.rmtree(workdir, ignore_errors=True)
    duration = time.perf_counter() - start
    head, sep, tail = stdout.rpartition(marker)
    if sep:
        data = json.loads(tail.strip().splitlines()[0])
        extra = head.strip()  # anything written to the raw file descriptor
        out = data.get("stdout", "")
        if extra:
            out = (extra + "\n" + out) if out else extra
        status = "ok" if data.get("ok") else "error"
        return SandboxResult(
            status,
            stdout=out[: limits.max_output * 2],
            stderr=data.get("stderr", ""),
            value=data.get("value"),
            error=data.get("error"),
            duration_s=duration,
            layers=data.get("layers", {}),
            replay_errors=data.get("replay_errors", []),
        )
    return _abnormal_exit(proc.returncode, stdout, stderr, limits, duration)


def _abnormal_exit(code: int, stdout: str, stderr: str, limits: SandboxLimits, duration: float) -> SandboxResult:
    if code in (-signal.SIGXCPU, -signal.SIGKILL) and duration >= limits.cpu_s * 0.5:
        return SandboxResult(
            "cpu-limit",
            stdout=stdout.strip()[: limits.max_output],
            error=f"TimeoutError: the code used more than {limits.cpu_s} s of CPU time and was stopped",
            duration_s=duration,
        )
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
        return SandboxResult(
            "killed",
            stdout=stdout.strip()[: limits.max_output],
            error=f"The process was killed by {name} (memory limit {limits.memory_mb} MB, file limit {limits.file_mb} MB)",
            duration_s=duration,
        )
    tail = stderr.strip().splitlines()[-5:]
    return SandboxResult(
        "crashed",
        stdout=stdout.strip()[: limits.max_output],
        error="The interpreter exited without a result" + (":\n" + "\n".join(tail) if tail else ""),
        duration_s=duration,
    )


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


class PythonSandbox:
    """One episode's Python session: the successful cells so far, replayed each call."""

    def __init__(self, limits: SandboxLimits | None = None, layers: dict[str, bool] | None = None,
                 cells: list[str] | None = None):
        self.limits = limits or SandboxLimits()
        self.layers = layers
        self.cells: list[str] = list(cells or [])

    def run(self, code: str) -> SandboxResult:
        code = strip_code_fences(code)
        result = run_python(code, self.cells, self.limits, self.layers)
        if result.ok:
            self.cells.append(code)
        return result

    def reset(self) -> None:
        self.cells.clear()

    def get_state(self) -> dict[str, Any]:
        return {"cells": list(self.cells)}

    def set_state(self, state: dict[str, Any]) -> None:
        self.cells = [str(c) for c in (state or {}).get("cells", [])]
