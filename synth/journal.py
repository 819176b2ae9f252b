"""Append-only JSONL journals: what makes every stage resumable.

A stage appends one record per finished item and flushes it to disk at once. A
process killed mid-write (SIGKILL) leaves at most one torn last line; opening the
journal again drops that line (the item is simply redone), so a restarted stage
continues where it stopped with no duplicate and no lost record.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any, Iterable


class Journal:
    def __init__(self, path: Path, key: str = "id") -> None:
        self.path = Path(path)
        self.key = key
        self._lock = threading.Lock()
        self.records: list[dict[str, Any]] = self._load()
        self.keys: set[str] = {str(r[key]) for r in self.records if key in r}

    def _load(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return []
        raw = self.path.read_bytes()
        records, good_end, seen = [], 0, set()
        for line in raw.splitlines(keepends=True):
            if not line.endswith(b"\n"):
                break  # torn last line of a killed writer
            try:
                record = json.loads(line)
            except ValueError:
                break
            good_end += len(line)
            k = record.get(self.key)
            if k is not None and str(k) in seen:
                continue  # never count one item twice
            if k is not None:
                seen.add(str(k))
            records.append(record)
        if good_end != len(raw):
            with open(self.path, "r+b") as fh:
                fh.truncate(good_end)
        return records

    def __contains__(self, key: object) -> bool:
        return str(key) in self.keys

    def __len__(self) -> int:
        return len(self.records)

    def append(self, record: dict[str, Any]) -> bool:
        """Append and fsync one record; False (and nothing written) if its key is known."""
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with self._lock:
            k = record.get(self.key)
            if k is not None and str(k) in self.keys:
                return False
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(line)
                fh.flush()
                os.fsync(fh.fileno())
            self.records.append(record)
            if k is not None:
                self.keys.add(str(k))
        return True


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> int:
    """Write a whole JSONL file atomically (derived outputs, not journals)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    n = 0
    with open(tmp, "w", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            n += 1
    tmp.replace(path)
    return n


def stable_id(*parts: Any, length: int = 12) -> str:
    """A short id derived from content, identical across runs and restarts."""
    text = "\x1f".join(str(p) for p in parts)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]
