"""File helpers for every layer: atomic writes (text, bytes, JSONL, folders) and
JSON/JSONL reading — strict for inputs (an unreadable line is an error naming
file:line), torn-line tolerant for journals (an unreadable line is skipped and
counted). This module imports nothing of the project, so any module may use it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

__all__ = [
    "JsonlScan", "atomic_dir", "atomic_file", "atomic_write_bytes", "atomic_write_jsonl", "atomic_write_text",
    "iter_json_lines", "read_json", "read_jsonl", "scan_jsonl",
]

# mkstemp makes files 0600; an atomic write should leave the mode open() would.
_UMASK = os.umask(0)
os.umask(_UMASK)


# ---- atomic writes ---------------------------------------------------------------------------------------
@contextlib.contextmanager
def atomic_file(path: Path, binary: bool = False) -> Iterator[IO[Any]]:
    """Yield a file (text, UTF-8; or ``binary``) beside ``path``; on success it replaces ``path`` whole.

    The temporary name is unique (concurrent writers of one target never share it),
    the data is fsynced before the rename and the folder after it, so a crash leaves
    the old file or the new one, never a part; on failure the temporary is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)
        with (os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8")) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str) -> Path:
    """Write ``text`` to a temporary file beside ``path`` and rename it into place."""
    with atomic_file(path) as fh:
        fh.write(text)
    return Path(path)


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to a temporary file beside ``path`` and rename it into place."""
    with atomic_file(path, binary=True) as fh:
        fh.write(data)
    return Path(path)


def atomic_write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> int:
    """Write a whole JSONL file atomically (derived outputs, not journals); the number of records."""
    n = 0
    with atomic_file(path) as fh:
        for record in records:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            n += 1
    return n


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (the entry lives in the folder's data)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # a platform without directory handles (Windows)
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on a folder; the rename still happened
    finally:
        os.close(fd)


def _fsync_tree(folder: Path) -> None:
    """fsync every file and folder under ``folder`` (before it is renamed into place)."""
    for root, _dirs, files in os.walk(folder):
        for name in files:
            with open(os.path.join(root, name), "rb") as fh:
                os.fsync(fh.fileno())
        _fsync_dir(Path(root))


@contextlib.contextmanager
def atomic_dir(target: Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``target``; on success it becomes ``target``.

    If another process finished the same folder first, its copy is kept and ours
    discarded (both hold the same content: folders are named by content hash).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        yield tmp
        _fsync_tree(tmp)
        try:
            os.rename(tmp, target)
        except OSError:
            if not target.is_dir():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _fsync_dir(target.parent)


# ---- strict reading (inputs) -----------------------------------------------------------------------------
def iter_json_lines(path: str | Path, error: type[Exception] = ValueError) -> Iterator[tuple[int, Any]]:
    """(1-based line number, parsed value) for each non-blank line of a JSONL file;
    a line that is not JSON raises ``error`` naming ``file:line``."""
    path = Path(path)
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                raise error(f"{path}:{n}: not valid JSON ({exc.msg})") from None
            yield n, value


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """The JSON objects of a JSONL file; anything else on a line is an error naming ``file:line``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"file not found: {path}")
    rows = []
    for n, row in iter_json_lines(path):
        if not isinstance(row, dict):
            raise ValueError(f"{path}:{n}: each line must be a JSON object")
        rows.append(row)
    return rows


def read_json(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"file not found: {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None


# ---- torn-line tolerant reading (journals) ---------------------------------------------------------------
@dataclass
class JsonlScan:
    """What :func:`scan_jsonl` read from a JSONL file."""

    #: the JSON objects, in file order (the first of each key)
    records: list[dict[str, Any]] = field(default_factory=list)
    #: 1-based numbers of the lines skipped because they hold no JSON object
    #: (garbage, blank, not UTF-8, not an object)
    bad_lines: list[int] = field(default_factory=list)
    #: which of ``bad_lines`` are blank (empty or whitespace only)
    blank_lines: list[int] = field(default_factory=list)
    #: records skipped because an earlier line has their key
    duplicates: int = 0
    #: the last line (no newline) did not parse: a writer killed mid-line
    torn_tail: bool = False


def scan_jsonl(path: str | Path, key: str | None = None) -> JsonlScan:
    """Read a JSONL file (an append-only journal) without failing on its content.

    A line that cannot be read is skipped and counted, never a reason to drop the
    lines after it; the bytes after the last newline are a torn line (skipped) unless
    they parse. With ``key``, a record whose key an earlier record has is skipped
    and counted (records without the key are all kept). The file is never changed.
    """
    *lines, tail = Path(path).read_bytes().split(b"\n")
    if tail:  # no newline after the last line: complete if it parses, else torn
        lines.append(tail)
    scan, seen = JsonlScan(), set()
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line.decode("utf-8"))
        except ValueError:  # JSONDecodeError and UnicodeDecodeError
            if tail and number == len(lines):
                scan.torn_tail = True
            else:
                scan.bad_lines.append(number)
                if not line.strip():
                    scan.blank_lines.append(number)
            continue
        if not isinstance(record, dict):
            scan.bad_lines.append(number)
            continue
        k = record.get(key) if key is not None else None
        if k is not None and str(k) in seen:
            scan.duplicates += 1  # never count one item twice
            continue
        if k is not None:
            seen.add(str(k))
        scan.records.append(record)
    return scan
