"""Fine-tuning settings, flags, Trainer arguments and the DeepSpeed ZeRO-3 path."""

from __future__ import annotations

import argparse
import importlib.util
import json

import pytest
from pydantic import ValidationError

from autoact.hardware import cpu_has_bf16

from autoact.finetune.config import DS_ZERO3_CONFIG, FinetuneConfig, add_training_flags, config_from_args
from autoact.finetune.train import build_parser, build_training_arguments, lora_config, training_kwargs


def parse(argv: list[str]) -> FinetuneConfig:
    parser = argparse.ArgumentParser()
    add_training_flags(parser)
    return config_from_args(parser.parse_args(argv))


def test_defaults_follow_the_original_recipe():
    config = FinetuneConfig()
    assert (config.lora_r, config.lora_alpha, config.lora_dropout) == (8, 16, 0.05)
    assert (config.learning_rate, config.lr_scheduler, config.warmup_ratio) == (1e-4, "cosine", 0.03)
    lora = lora_config(config)
    assert (lora.r, lora.lora_alpha, lora.lora_dropout) == (8, 16, 0.05)
    assert lora.target_modules == "all-linear"
    assert parse([]) == FinetuneConfig()


def test_flags_set_the_config(tmp_path):
    general = tmp_path / "general.jsonl"
    general.write_text("{}\n")
    config = parse(["--epochs", "3", "--max-length", "512", "--batch-size", "8", "--lr", "2e-4",
                    "--general-data", str(general), "--general-ratio", "0.2", "--deepspeed", str(DS_ZERO3_CONFIG),
                    "--threads", "1", "--save-steps", "7"])
    assert (config.epochs, config.max_length, config.batch_size, config.learning_rate) == (3.0, 512, 8, 2e-4)
    assert (config.general_data, config.general_ratio) == (general, 0.2)
    assert config.deepspeed == DS_ZERO3_CONFIG
    assert (config.threads, config.save_steps) == (1, 7)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--general-ratio", "0.2"], "needs --general-data"),
        (["--general-data", "x.jsonl"], "needs --general-ratio"),
        (["--general-data", "absent.jsonl", "--general-ratio", "0.3"], "is not a file"),
        (["--deepspeed", "absent.json"], "is not a file"),
        (["--batch-size", "0"], "batch_size"),
        (["--lr", "0"], "learning_rate"),
    ],
)
def test_bad_flags_are_refused_clearly(argv, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=message):
        parse(argv)


def test_ratio_must_leave_room_for_agent_data(tmp_path):
    general = tmp_path / "g.jsonl"
    general.write_text("{}\n")
    with pytest.raises(ValidationError, match="general_ratio"):
        FinetuneConfig(general_data=general, general_ratio=1.0)


def test_fingerprint_ignores_bookkeeping_only():
    base = FinetuneConfig()
    assert base.fingerprint() == FinetuneConfig(save_steps=3, logging_steps=1, threads=1, progress=False).fingerprint()
    assert base.fingerprint() != FinetuneConfig(learning_rate=2e-4).fingerprint()
    assert base.fingerprint() != FinetuneConfig(max_steps=10).fingerprint()


def test_training_kwargs_carry_the_recipe(tmp_path):
    kwargs = training_kwargs(FinetuneConfig(epochs=3, batch_size=2, precision="bf16"), tmp_path, cuda=False)
    assert kwargs["num_train_epochs"] == 3 and kwargs["per_device_train_batch_size"] == 2
    assert kwargs["lr_scheduler_type"] == "cosine" and kwargs["warmup_steps"] == 0.03
    assert kwargs["bf16"] is True and kwargs["use_cpu"] is True and kwargs["report_to"] == "none"
    # auto: bf16 only where the hardware computes it natively (emulated bf16 was 4x slower on an AVX2 CPU)
    auto = training_kwargs(FinetuneConfig(), tmp_path, cuda=False)
    assert auto["bf16"] is cpu_has_bf16() and auto["fp16"] is False
    assert training_kwargs(FinetuneConfig(), tmp_path, cuda=True)["bf16"] is True
    assert kwargs["remove_unused_columns"] is False  # the collator needs 'labels'
    assert "deepspeed" not in kwargs
    args = build_training_arguments(FinetuneConfig(epochs=3, batch_size=2), tmp_path)
    assert args.lr_scheduler_type == "cosine" and args.num_train_epochs == 3
    with pytest.raises(ValueError, match="fp16 training needs a GPU"):
        training_kwargs(FinetuneConfig(precision="fp16"), tmp_path, cuda=False)


# ---- the multi-GPU path -------------------------------------------------------------
def test_zero3_config_ships_and_loads():
    assert DS_ZERO3_CONFIG.is_file()
    config = json.loads(DS_ZERO3_CONFIG.read_text())
    assert config["zero_optimization"]["stage"] == 3
    # "auto" lets the Trainer fill these from its own arguments, so flags stay the one source
    for key in ("train_micro_batch_size_per_gpu", "gradient_accumulation_steps", "gradient_clipping"):
        assert config[key] == "auto"
    assert config["bf16"]["enabled"] == "auto"
    # the adapter must be gathered from its shards when saved
    assert config["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] is True


def test_entry_point_builds_trainer_arguments_with_the_deepspeed_config(tmp_path):
    # the way the deepspeed launcher calls the module: --local_rank plus our flags
    args = build_parser().parse_args(
        ["--run", str(tmp_path), "--agent", "plan", "--deepspeed", str(DS_ZERO3_CONFIG), "--local_rank=0"]
    )
    assert args.local_rank == 0
    config = config_from_args(args)
    kwargs = training_kwargs(config, tmp_path / "checkpoints", cuda=True)
    assert kwargs["deepspeed"] == str(DS_ZERO3_CONFIG)
    assert kwargs["use_cpu"] is False and kwargs["bf16"] is True
    if importlib.util.find_spec("deepspeed") is None:
        pytest.skip("deepspeed is not installed (pip install 'autoact[deepspeed]'): "
                    "TrainingArguments(deepspeed=…) cannot be built; its keyword arguments were checked above")
    training_args = build_training_arguments(config, tmp_path / "checkpoints")
    assert training_args.deepspeed == str(DS_ZERO3_CONFIG)
    assert training_args.hf_deepspeed_config.is_zero3()


def test_accelerate_style_launch_needs_no_rank_flag(tmp_path):
    args = build_parser().parse_args(["--run", str(tmp_path), "--deepspeed", str(DS_ZERO3_CONFIG)])
    assert args.local_rank == -1 and args.agent == "plan"
