"""Real servers for the slow tests: the vLLM model server, and app servers run as
subprocesses (own process group, log outside the repository, stopped by pid).

``AUTOACT_TEST_VLLM_URL`` attaches the tests to a vLLM endpoint that is already up
(handy while iterating); unset, a server is started for the test module.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import httpx

from autoact.serving.vllm_server import VLLMServer, free_port

# No calls to the outside world from the LangGraph dev server.
QUIET_ENV = {
    "LANGGRAPH_CLI_NO_ANALYTICS": "1",
    "LANGGRAPH_NO_VERSION_CHECK": "1",
    "LANGSMITH_TRACING": "false",
    "LANGCHAIN_TRACING_V2": "false",
}


@contextmanager
def vllm_endpoint(settings, model_path: str) -> Iterator[str]:
    """A real vLLM server with the embedded model for the duration (or the attached one)."""
    attached = os.environ.get("AUTOACT_TEST_VLLM_URL")
    server = VLLMServer(settings, model_path, base_url=attached or None)
    server.start()
    try:
        yield server.base_url.rstrip("/")
    finally:
        pid = server.process.pid if server.process else None
        server.stop()
        if pid is not None:  # nothing of the group is left
            try:
                os.killpg(pid, 0)
            except ProcessLookupError:
                pass
            else:
                raise AssertionError(f"vLLM process group {pid} still runs after stop()")


class AppProcess:
    """A server command in its own process group, its output in a log file."""

    def __init__(self, cmd: list[str], log_path: Path, cwd: Path, env: dict[str, str] | None = None):
        self.cmd, self.log_path = cmd, log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        full_env = {**os.environ, **(env or {})}
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(
                cmd, cwd=cwd, env=full_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def wait_http(self, url: str, timeout: float) -> None:
        """Wait until ``url`` answers 200; fail with the log if the process dies or time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.cmd[:4]} exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(url, timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"{url} did not answer within {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM to the process group, SIGKILL if it lingers; returns when none is left."""
        pgid = self.proc.pid
        for sig, wait_s in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait_s
            while time.monotonic() < deadline:
                self.proc.poll()
                try:
                    os.killpg(pgid, 0)
                except ProcessLookupError:
                    self.proc.poll()
                    return
                time.sleep(0.2)
        self.proc.poll()

    def is_gone(self) -> bool:
        try:
            os.killpg(self.proc.pid, 0)
        except ProcessLookupError:
            return True
        return False


def local_port() -> int:
    return free_port("127.0.0.1")
