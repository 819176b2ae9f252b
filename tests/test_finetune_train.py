"""Training adapters with the Trainer: outputs, atomic placement, ablation, mixing, resuming."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from finetune_samples import general_rows, plan_record, write_jsonl, write_run

from autoact.finetune.config import FinetuneConfig
from autoact.finetune.records import RecordError
from autoact.finetune.training_report import LOSS_PLOT_NAME, MANIFEST_NAME, read_manifest
from autoact.finetune.train import (
    FINGERPRINT_NAME,
    adapter_names,
    finetune_run,
    last_complete_checkpoint,
    load_peft_model,
    place_adapter,
    prepare_staging,
    staging_dir,
)

REPO = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def model_path():
    from autoact.modelhub import prepare_embedded_model
    from autoact.settings import Settings

    return str(prepare_embedded_model(Settings().home, "smollm2-135m"))


def tiny(**overrides) -> FinetuneConfig:
    """A few steps on one thread: enough to exercise the whole path quickly."""
    values = dict(max_steps=3, batch_size=2, logging_steps=1, save_steps=100, threads=1, progress=False)
    return FinetuneConfig(**{**values, **overrides})


# ---- fresh adapters --------------------------------------------------------------------
def test_fresh_lora_layers_come_from_the_seed_alone(model_path):
    """The first adapter of a process drew its initial LoRA weights from whatever the
    process had drawn before (the Trainer seeds only after the model exists): two
    main jobs on byte-identical data trained different plan adapters."""
    import torch

    def lora(model) -> dict:
        return {k: v.detach().clone() for k, v in model.state_dict().items() if "lora_A" in k}

    first = lora(load_peft_model(model_path, tiny()))
    torch.rand(1000)  # the process draws random numbers in between
    second = lora(load_peft_model(model_path, tiny()))
    assert first and all(torch.equal(first[k], second[k]) for k in first)
    other = lora(load_peft_model(model_path, tiny(seed=1)))
    assert not all(torch.equal(first[k], other[k]) for k in first)


# ---- staging logic (no training) ----------------------------------------------------
def test_staging_resumes_only_a_matching_complete_checkpoint(tmp_path):
    staging = staging_dir(tmp_path / "plan")
    assert staging.name == "plan.partial"
    fingerprint = {"data_sha256": "abc", "settings": {"lr": 1e-4}}
    assert prepare_staging(staging, fingerprint) is None
    assert json.loads((staging / FINGERPRINT_NAME).read_text()) == fingerprint
    ckpts = staging / "checkpoints"
    for step, complete in ((2, True), (4, True), (6, False)):
        folder = ckpts / f"checkpoint-{step}"
        folder.mkdir(parents=True)
        (folder / "adapter_model.safetensors").write_bytes(b"x")
        (folder / "trainer_state.json").write_text('{"global_step": %d}' % step if complete else '{"glob')
    # checkpoint-6 was cut off while being written: the one before it is used
    assert last_complete_checkpoint(ckpts).name == "checkpoint-4"
    assert prepare_staging(staging, fingerprint).name == "checkpoint-4"
    # other data: the old checkpoints must not be resumed
    assert prepare_staging(staging, {**fingerprint, "data_sha256": "def"}) is None
    assert not ckpts.exists()


def test_place_adapter_replaces_the_old_folder(tmp_path):
    out = tmp_path / "plan"
    out.mkdir()
    (out / "old.txt").write_text("old")
    built = tmp_path / "plan.partial" / "adapter"
    built.mkdir(parents=True)
    (built / "adapter_config.json").write_text("{}")
    place_adapter(built, out)
    assert sorted(p.name for p in out.iterdir()) == ["adapter_config.json"]
    assert not (tmp_path / "plan.old").exists()


def test_adapter_names():
    assert adapter_names() == ["plan", "tool", "reflect"]
    assert adapter_names(["tool", "tool"]) == ["tool"]
    assert adapter_names(["plan"], one_agent=True) == ["one-agent"]
    assert adapter_names(["react"]) == ["react"]  # any record file in RUN/data
    for bad in ("../plan", "Plan", ""):
        with pytest.raises(RecordError, match="invalid agent name"):
            adapter_names([bad])


def test_missing_data_is_reported_before_training(tmp_path, model_path):
    write_run(tmp_path, per_agent=2, agents=("plan",))
    with pytest.raises(RecordError, match="tool.jsonl"):
        finetune_run(tmp_path, model_path, tiny())
    assert not (tmp_path / "adapters").exists()


# ---- real training ----------------------------------------------------------------
@pytest.mark.slow
def test_three_adapters_with_tokenizer_manifest_and_plot(tmp_path, model_path):
    from transformers import AutoTokenizer

    write_run(tmp_path, per_agent=4)
    manifests = finetune_run(tmp_path, model_path, tiny())
    assert sorted(manifests) == ["plan", "reflect", "tool"]
    adapters = tmp_path / "adapters"
    assert sorted(p.name for p in adapters.iterdir()) == [LOSS_PLOT_NAME, "plan", "reflect", "tool"]
    for name in ("plan", "tool", "reflect"):
        folder = adapters / name
        config = json.loads((folder / "adapter_config.json").read_text())
        assert (config["r"], config["lora_alpha"], config["peft_type"]) == (8, 16, "LORA")
        assert (folder / "adapter_model.safetensors").stat().st_size > 1_000_000
        tokenizer = AutoTokenizer.from_pretrained(folder)
        assert tokenizer.chat_template == AutoTokenizer.from_pretrained(model_path).chat_template
        assert (folder / LOSS_PLOT_NAME).read_bytes().startswith(PNG_MAGIC)
        manifest = read_manifest(folder)
        assert manifest == manifests[name]
        assert manifest["agents"] == [name]
        assert manifest["data"]["records"] == 4 and manifest["data"]["examples"] == 4
        assert len(manifest["data"]["sha256"]) == 64
        assert list(manifest["data"]["sources"]) == [str(tmp_path / "data" / f"{name}.jsonl")]
        result = manifest["result"]
        assert result["global_step"] == 3 and result["resumed_from_step"] == 0
        assert [p["step"] for p in result["loss_curve"]] == [1, 2, 3]
        assert all(p["loss"] > 0 for p in result["loss_curve"])
        assert result["tokens_per_s"] > 0 and result["train_seconds"] > 0
        assert manifest["settings"]["learning_rate"] == 1e-4
    assert not list(adapters.glob("*.partial")) and not list(adapters.glob("*.old"))
    # the run's adapters are what `autoact serve` picks up by name
    from autoact.serving.vllm_server import run_adapters

    assert sorted(run_adapters(tmp_path)) == ["plan", "reflect", "tool"]


@pytest.mark.slow
def test_one_agent_ablation_with_general_data(tmp_path, model_path):
    write_run(tmp_path, per_agent=4)
    general = write_jsonl(tmp_path / "general.jsonl", general_rows(10))
    config = tiny(max_steps=2, general_data=general, general_ratio=0.25)
    manifests = finetune_run(tmp_path, model_path, config, one_agent=True)
    assert list(manifests) == ["one-agent"]
    manifest = read_manifest(tmp_path / "adapters" / "one-agent")
    assert manifest["agents"] == ["general", "plan", "reflect", "tool"]
    data = manifest["data"]
    assert data["agent_examples"] == 12 and data["general_examples"] == 4 and data["records"] == 16
    assert data["general_ratio"] == 0.25 and len(data["general_sha256"]) == 64
    assert len(data["sources"]) == 3
    assert not (tmp_path / "adapters" / "plan").exists()


@pytest.mark.slow
def test_retraining_replaces_the_adapter(tmp_path, model_path):
    write_run(tmp_path, per_agent=2, agents=("plan",))
    first = finetune_run(tmp_path, model_path, tiny(max_steps=1), agents=["plan"])["plan"]
    write_jsonl(tmp_path / "data" / "plan.jsonl", [plan_record(i) for i in range(2, 5)])
    second = finetune_run(tmp_path, model_path, tiny(max_steps=1), agents=["plan"])["plan"]
    assert first["data"]["sha256"] != second["data"]["sha256"]
    assert read_manifest(tmp_path / "adapters" / "plan")["data"]["records"] == 3
    assert sorted(p.name for p in (tmp_path / "adapters").iterdir()) == [LOSS_PLOT_NAME, "plan"]


@pytest.mark.slow
def test_killed_training_resumes_from_its_last_checkpoint(tmp_path, model_path):
    data = write_jsonl(tmp_path / "plan.jsonl", [plan_record(i) for i in range(6)])
    out = tmp_path / "adapters" / "plan"
    total = 12
    cmd = [
        sys.executable, "-m", "autoact.finetune.train", "--data", str(data), "--output", str(out),
        "--max-steps", str(total), "--save-steps", "2", "--batch-size", "1", "--logging-steps", "1",
        "--threads", "1", "--no-progress",
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    checkpoints = staging_dir(out) / "checkpoints"
    with open(tmp_path / "first.log", "wb") as log:
        first = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 300
        while last_complete_checkpoint(checkpoints) is None:
            assert first.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "no checkpoint after 300 s"
            time.sleep(0.2)
        os.kill(first.pid, signal.SIGKILL)
    finally:
        if first.poll() is None:
            os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
    assert first.returncode == -signal.SIGKILL
    assert not out.exists()  # nothing half-trained is put in place
    killed_at = int(last_complete_checkpoint(checkpoints).name.split("-")[1])
    assert 2 <= killed_at < total

    second = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert f"resuming from checkpoint-{killed_at}" in second.stdout
    manifest = read_manifest(out)
    result = manifest["result"]
    assert result["resumed_from_step"] == killed_at
    assert result["global_step"] == total
    assert result["steps_this_session"] == total - killed_at  # continued, not restarted from 0
    # the loss history of the first session was restored with the checkpoint
    assert [p["step"] for p in result["loss_curve"]] == list(range(1, total + 1))
    assert not staging_dir(out).exists()
