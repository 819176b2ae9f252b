"""The training entry point: one LoRA adapter from chat records, with the HF Trainer.

One process (CPU, or one GPU)::

    autoact finetune --run RUN                                  # plan, tool and reflect
    python -m autoact.finetune.train --run RUN --agent plan     # one adapter

Several GPUs with DeepSpeed ZeRO-3 (``pip install 'autoact[deepspeed]'``); the same
entry point, launched once per GPU::

    deepspeed --num_gpus 8 --module autoact.finetune.train \\
        --run RUN --agent plan --deepspeed finetune/ds_zero3.json
    accelerate launch --num_processes 8 -m autoact.finetune.train \\
        --run RUN --agent plan --deepspeed finetune/ds_zero3.json

Training happens in a staging folder beside the adapter (``RUN/adapters/plan.partial``)
that holds the checkpoints; a restarted training with the same data and settings
resumes from the last complete checkpoint there. The finished adapter, its tokenizer
(with the chat template), the manifest and the loss plot are renamed into place only
when training is complete.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from autoact.finetune.config import FinetuneConfig, add_training_flags, config_from_args
from autoact.finetune.masking import MaskedCompletionCollator, encode_records, supports_target_logits
from autoact.finetune.records import (
    AGENTS,
    ONE_AGENT,
    RecordError,
    check_adapter_name,
    load_agent_records,
    mix_general,
    read_jsonl,
    records_sha256,
)
from autoact.finetune.training_report import LOSS_PLOT_NAME, MANIFEST_NAME, loss_curve, plot_loss, write_json
from autoact.hardware import cpu_has_bf16
from autoact.modelhub import file_sha256, resolve_model
from autoact.settings import add_common, settings_from_args

log = logging.getLogger(__name__)

FINGERPRINT_NAME = "autoact-staging.json"
CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")


# ---- arguments -----------------------------------------------------------------
def training_kwargs(config: FinetuneConfig, output_dir: Path, cuda: bool | None = None) -> dict[str, Any]:
    """The keyword arguments of ``TrainingArguments`` for these settings.

    Kept separate from the object so that it can be checked where DeepSpeed (which
    ``TrainingArguments(deepspeed=…)`` imports) is not installed.
    """
    if cuda is None:
        import torch

        cuda = torch.cuda.is_available()

    precision = config.precision
    if precision == "auto":  # bf16 where it is native: a GPU, or a CPU with AVX-512 BF16 / AMX
        precision = "bf16" if cuda or cpu_has_bf16() else "fp32"
    if precision == "fp16" and not cuda:
        raise ValueError("fp16 training needs a GPU; use --precision bf16 or fp32 on a CPU")
    kwargs: dict[str, Any] = {
        "output_dir": str(output_dir),
        "num_train_epochs": config.epochs,
        "max_steps": config.max_steps,
        "per_device_train_batch_size": config.batch_size,
        "gradient_accumulation_steps": config.grad_accum,
        "learning_rate": config.learning_rate,
        "lr_scheduler_type": config.lr_scheduler,
        "warmup_steps": config.warmup_ratio,  # a float below 1 is a ratio of the total steps
        "weight_decay": config.weight_decay,
        "bf16": precision == "bf16",
        "fp16": precision == "fp16",
        "activation_checkpointing": config.gradient_checkpointing,
        "use_cpu": not cuda,
        "seed": config.seed,
        "data_seed": config.seed,
        "logging_strategy": "steps",
        "logging_steps": config.logging_steps,
        "logging_first_step": True,
        "save_strategy": "steps",
        "save_steps": config.save_steps,
        "save_total_limit": config.save_total_limit,
        "report_to": "none",
        "include_num_input_tokens_seen": "non_padding",
        # batches of similar lengths waste less compute on padding
        "train_sampling_strategy": "group_by_length",
        "remove_unused_columns": False,
        "label_names": ["labels"],
        "dataloader_pin_memory": bool(cuda),
        "disable_tqdm": not config.progress,
    }
    if config.deepspeed is not None:
        kwargs["deepspeed"] = str(config.deepspeed)
    return kwargs


def build_training_arguments(config: FinetuneConfig, output_dir: Path):
    from transformers import TrainingArguments

    return TrainingArguments(**training_kwargs(config, output_dir))


def linear_module_names(model: Any) -> list[str]:
    """Names of the linear layers inside the transformer blocks (what 'all-linear'
    means to peft: the output head excluded)."""
    import torch

    names = set()
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and ".layers." in name:
            names.add(name.rsplit(".", 1)[-1])
    return sorted(names)


def lora_config(config: FinetuneConfig, model: Any = None):
    from peft import LoraConfig

    targets: str | list[str] = config.target_modules
    extra: dict[str, Any] = {}
    if config.lora_layers is not None:
        if model is None:
            raise ValueError("lora_layers needs the model to find its layers")
        n_layers = int(model.config.num_hidden_layers)
        if targets == "all-linear":
            targets = linear_module_names(model)
        first = max(0, n_layers - config.lora_layers)
        extra["layers_to_transform"] = list(range(first, n_layers))
    return LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=targets,
        bias="none",
        task_type="CAUSAL_LM",
        **extra,
    )


def load_tokenizer(model_path: str):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token  # padding is masked out of loss and attention
    return tokenizer


def load_peft_model(model_path: str, config: FinetuneConfig):
    """The base model (fp32 master weights; bf16/fp16 run as autocast) with fresh LoRA layers."""
    import torch
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM, set_seed

    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    if config.gradient_checkpointing:
        model.enable_input_require_grads()
    # the LoRA layers' initial weights from the seed alone: the Trainer seeds only after
    # the model exists, so the first adapter of a process drew them from whatever the
    # process had drawn before (two main jobs on identical data trained different plans)
    set_seed(config.seed)
    return get_peft_model(model, lora_config(config, model))


# ---- staging and resuming ------------------------------------------------------------
def staging_dir(out_dir: Path) -> Path:
    return Path(out_dir).with_name(Path(out_dir).name + ".partial")


def last_complete_checkpoint(folder: Path) -> Path | None:
    """The newest ``checkpoint-N`` whose trainer state was fully written."""
    if not Path(folder).is_dir():
        return None
    found = []
    for child in Path(folder).iterdir():
        match = CHECKPOINT_RE.match(child.name)
        if match and child.is_dir():
            found.append((int(match.group(1)), child))
    for _, path in sorted(found, reverse=True):
        try:
            json.loads((path / "trainer_state.json").read_text())
        except (OSError, ValueError):
            continue  # killed while saving: fall back to the one before
        if any(path.glob("adapter_model.*")):
            return path
    return None


def prepare_staging(staging: Path, fingerprint: dict) -> Path | None:
    """Make the staging folder ready; returns the checkpoint to resume from, if any.

    A staging folder left by a training on other data or settings is discarded.
    """
    marker = staging / FINGERPRINT_NAME
    if staging.exists():
        try:
            same = json.loads(marker.read_text()) == fingerprint
        except (OSError, ValueError):
            same = False
        last = last_complete_checkpoint(staging / "checkpoints") if same else None
        if last is not None:
            return last
        log.info("discarding %s (%s)", staging, "no complete checkpoint" if same else "other data or settings")
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    write_json(marker, fingerprint)
    return None


def place_adapter(built: Path, out_dir: Path) -> None:
    """Move the finished adapter folder into place, replacing an older one."""
    old = out_dir.with_name(out_dir.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if out_dir.exists():
        out_dir.rename(old)
    built.rename(out_dir)
    shutil.rmtree(old, ignore_errors=True)


def session_clock():
    """A Trainer callback recording the step, token count and time of this session's training.

    Built on call so that importing this module does not import torch.
    """
    from transformers import TrainerCallback

    class SessionClock(TrainerCallback):
        start_step = start_tokens = steps = tokens = 0
        start = seconds = 0.0

        def on_train_begin(self, args, state, control, **kwargs):
            # on resume the checkpoint's state is already loaded here
            self.start_step = state.global_step
            self.start_tokens = state.num_input_tokens_seen
            self.start = time.perf_counter()

        def on_train_end(self, args, state, control, **kwargs):
            self.seconds = time.perf_counter() - self.start
            self.steps = state.global_step - self.start_step
            self.tokens = state.num_input_tokens_seen - self.start_tokens

    return SessionClock()


def _versions() -> dict[str, str]:
    import peft
    import torch
    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__}


# ---- training ------------------------------------------------------------------
def train_adapter(
    records: list[dict],
    model_path: str,
    out_dir: Path,
    config: FinetuneConfig,
    *,
    name: str | None = None,
    sources: Iterable[Path] = (),
    data_info: dict | None = None,
) -> dict | None:
    """Train one LoRA adapter on ``records`` and write it to ``out_dir``.

    Returns the manifest (None on processes other than the main one in distributed
    training). Raises RecordError when no record fits in ``config.max_length``.
    """
    import torch
    from transformers import Trainer

    started = time.perf_counter()
    out_dir = Path(out_dir)
    name = name or out_dir.name
    if config.threads:
        torch.set_num_threads(config.threads)
    tokenizer = load_tokenizer(model_path)
    dataset, skipped = encode_records(tokenizer, records, config.max_length, progress=config.progress)
    if len(dataset) == 0:
        raise RecordError(
            f"{name}: all {len(records)} records are longer than --max-length {config.max_length} tokens"
        )
    if skipped:
        log.warning("%s: %d of %d records exceed %d tokens even with their history cut, and are skipped", name,
                    len(skipped), len(records), config.max_length)
    if dataset.truncated_ids:
        print(f"[finetune] {name}: {len(dataset.truncated_ids)} of {len(records)} records longer than "
              f"{config.max_length} tokens lost their oldest history lines (targets kept)", flush=True)
    data_hash = records_sha256(records)
    fingerprint = {"base_model": str(model_path), "data_sha256": data_hash, "settings": config.fingerprint()}
    staging = staging_dir(out_dir)
    checkpoints = staging / "checkpoints"

    # TrainingArguments first: under ZeRO-3 it must exist before the model is loaded.
    args = build_training_arguments(config, checkpoints)
    with args.main_process_first(desc="staging folder"):
        resume = prepare_staging(staging, fingerprint)
    resumed_from = int(CHECKPOINT_RE.match(resume.name).group(1)) if resume else 0
    if resume is not None:
        print(f"[finetune] {name}: resuming from {resume.name} (step {resumed_from})", flush=True)

    model = load_peft_model(model_path, config)
    clock = session_clock()
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=dataset,
        data_collator=MaskedCompletionCollator(
            tokenizer.pad_token_id, target_logits_only=config.target_logits_only and supports_target_logits(model)
        ),
        processing_class=tokenizer,
        callbacks=[clock],
    )
    result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    built = staging / "adapter"
    trainer.save_model(str(built))  # collective under ZeRO-3: every process takes part
    if not trainer.is_world_process_zero():
        return None
    tokenizer.save_pretrained(str(built))  # the chat template travels with the adapter

    state = trainer.state
    curve = loss_curve(state.log_history)
    data = {
        "sources": {str(p): file_sha256(Path(p)) for p in sources},
        "records": len(records),
        "examples": len(dataset),
        "skipped_too_long": len(skipped),
        "skipped_ids": skipped[:50],
        "truncated_history": len(dataset.truncated_ids),
        "truncated_ids": dataset.truncated_ids[:50],
        "tokens": dataset.num_tokens,
        "target_tokens": dataset.num_target_tokens,
        "sha256": data_hash,
        **(data_info or {}),
    }
    manifest = {
        "format": 1,
        "name": name,
        "agents": sorted({r.get("agent", "?") for r in records}),
        "base_model": str(model_path),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "data": data,
        "settings": config.model_dump(mode="json"),
        "chat_template": tokenizer.chat_template,
        "result": {
            "global_step": state.global_step,
            "epochs": round(float(state.epoch or 0.0), 4),
            "train_loss": float(result.training_loss),
            "final_loss": curve[-1]["loss"] if curve else None,
            "loss_curve": curve,
            "resumed_from_step": resumed_from,
            "steps_this_session": clock.steps,
            "tokens_this_session": int(clock.tokens),
            "train_seconds": round(clock.seconds, 3),
            "tokens_per_s": round(clock.tokens / clock.seconds, 2) if clock.seconds > 0 else None,
            "wall_seconds": round(time.perf_counter() - started, 3),
        },
        "versions": _versions(),
    }
    plot_loss({name: curve}, built / LOSS_PLOT_NAME, title=f"{name} adapter: training loss")
    write_json(built / MANIFEST_NAME, manifest)
    place_adapter(built, out_dir)
    shutil.rmtree(staging, ignore_errors=True)
    return manifest


def adapter_names(agents: Iterable[str] = AGENTS, one_agent: bool = False) -> list[str]:
    if one_agent:
        return [ONE_AGENT]
    names = [check_adapter_name(a) for a in dict.fromkeys(agents)]
    if not names:
        raise RecordError(f"no agents to train; agents are {[*AGENTS, ONE_AGENT]}")
    return names


def finetune_run(
    run_dir: Path,
    model_path: str,
    config: FinetuneConfig,
    agents: Iterable[str] = AGENTS,
    one_agent: bool = False,
) -> dict[str, dict]:
    """Train the adapters of a run: ``RUN/data/<agent>.jsonl`` -> ``RUN/adapters/<agent>/``.

    With ``one_agent`` a single adapter, ``one-agent``, is trained on all three
    agents' records (the paper's ablation). Returns the manifests by adapter name.
    """
    run_dir = Path(run_dir)
    names = adapter_names(agents, one_agent)
    # every data file is checked before the first (long) training starts
    loaded = {name: load_agent_records(run_dir, name) for name in names}
    general: list[dict] = []
    if config.general_data is not None:
        general = read_jsonl(config.general_data, general=True)
    manifests: dict[str, dict] = {}
    for name in names:
        records, files = loaded[name]
        mixed = mix_general(records, general, config.general_ratio, config.seed, salt=name)
        info = {}
        if general:
            info = {
                "general_data": str(config.general_data),
                "general_sha256": file_sha256(config.general_data),
                "general_ratio": config.general_ratio,
                "general_examples": len(mixed) - len(records),
                "agent_examples": len(records),
            }
        print(f"[finetune] {name}: {len(mixed)} records ({len(records)} from {', '.join(f.name for f in files)})",
              flush=True)
        manifest = train_adapter(
            mixed, model_path, run_dir / "adapters" / name, config, name=name, sources=files, data_info=info
        )
        if manifest is not None:
            r = manifest["result"]
            print(
                f"[finetune] {name}: {r['global_step']} steps, final loss {r['final_loss']}, "
                f"{r['tokens_per_s']} tokens/s, {r['train_seconds']:.0f} s -> {run_dir / 'adapters' / name}",
                flush=True,
            )
            manifests[name] = manifest
    if manifests:
        plot_run_losses(run_dir)
    return manifests


def plot_run_losses(run_dir: Path) -> Path | None:
    """``RUN/adapters/loss.png``: the loss curves of every adapter the run has, together."""
    curves = {}
    for manifest_path in sorted((Path(run_dir) / "adapters").glob(f"*/{MANIFEST_NAME}")):
        try:
            curves[manifest_path.parent.name] = json.loads(manifest_path.read_text())["result"]["loss_curve"]
        except (OSError, ValueError, KeyError):
            log.warning("skipping unreadable manifest %s", manifest_path)
    if not curves:
        return None
    return plot_loss(curves, Path(run_dir) / "adapters" / LOSS_PLOT_NAME, title="training loss per adapter")


# ---- module entry point (python -m / deepspeed --module / accelerate launch -m) -------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m autoact.finetune.train", description="Train one LoRA adapter (see the module docstring)."
    )
    add_common(parser)
    parser.add_argument("--agent", default="plan",
                        help=f"{', '.join([*AGENTS, ONE_AGENT])} or another RUN/data/<agent>.jsonl")
    parser.add_argument("--data", action="append", help="train on these JSONL record files instead (repeatable)")
    parser.add_argument("--output", help="adapter folder (default RUN/adapters/<agent>)")
    # set by the deepspeed launcher; accelerate and torchrun use the environment instead
    parser.add_argument("--local_rank", "--local-rank", type=int, default=-1, help=argparse.SUPPRESS)
    add_training_flags(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.local_rank >= 0:
        os.environ.setdefault("LOCAL_RANK", str(args.local_rank))
    try:
        config = config_from_args(args)
        settings = settings_from_args(args)
        model_path = resolve_model(settings.model, settings.home)
        if args.data:
            if not args.output:
                raise RecordError("--data needs --output (the adapter folder to write)")
            records = [r for path in args.data for r in read_jsonl(Path(path))]
            out = Path(args.output)
            manifest = train_adapter(records, model_path, out, config, name=out.name,
                                     sources=[Path(p) for p in args.data])
        else:
            records, files = load_agent_records(settings.run_dir, args.agent)
            general = read_jsonl(config.general_data, general=True) if config.general_data else []
            records = mix_general(records, general, config.general_ratio, config.seed, salt=args.agent)
            out = Path(args.output) if args.output else settings.run_dir / "adapters" / args.agent
            manifest = train_adapter(records, model_path, out, config, name=args.agent, sources=files)
    except (RecordError, ValueError) as exc:
        print(f"autoact.finetune.train: error: {exc}", file=sys.stderr)
        return 2
    if manifest is not None:
        r = manifest["result"]
        print(f"[finetune] {manifest['name']}: done at step {r['global_step']} (resumed from step "
              f"{r['resumed_from_step']}), final loss {r['final_loss']}, {r['tokens_per_s']} tokens/s -> {out}",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
