"""Append-only JSONL journals: what makes every stage resumable.

A stage appends one record per finished item and flushes it to disk at once. A
process killed mid-write (SIGKILL) leaves at most one torn last line; loading the
journal skips that line (the item is simply redone), so a restarted stage
continues where it stopped with no duplicate and no lost record. Loading never
changes the file: a line that cannot be read (garbage, blank, not UTF-8, not a
JSON object) is skipped and counted, never a reason to drop the lines after it.
Only the next append removes a torn last line (the bytes after the last newline
that do not parse), so that its record starts on a line of its own.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

from autoact.io import scan_jsonl

log = logging.getLogger(__name__)


class Journal:
    def __init__(self, path: Path, key: str = "id") -> None:
        self.path = Path(path)
        self.key = key
        self._lock = threading.Lock()
        #: 1-based numbers of the lines skipped because they hold no JSON object
        self.bad_lines: list[int] = []
        #: records skipped because an earlier line has their key
        self.duplicates = 0
        #: the last line (no newline) did not parse: a writer killed mid-line
        self.torn_tail = False
        self.records: list[dict[str, Any]] = self._load()
        self.keys: set[str] = {str(r[key]) for r in self.records if key in r}
        if self.bad_lines or self.torn_tail:
            log.warning("%s: %s", self.path, self.skipped_summary())

    @property
    def skipped(self) -> int:
        """Lines of the file not in ``records`` (bad, duplicate or torn)."""
        return len(self.bad_lines) + self.duplicates + int(self.torn_tail)

    def skipped_summary(self) -> str:
        """The skipped lines in words, for reports ('' when none was skipped)."""
        parts = []
        if self.bad_lines:
            shown = ", ".join(map(str, self.bad_lines[:10])) + (", …" if len(self.bad_lines) > 10 else "")
            parts.append(f"{len(self.bad_lines)} unreadable line(s) skipped (line {shown})")
        if self.duplicates:
            parts.append(f"{self.duplicates} duplicate record(s) skipped")
        if self.torn_tail:
            parts.append("a torn last line skipped")
        return "; ".join(parts)

    def _load(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return []
        scan = scan_jsonl(self.path, key=self.key)
        self.bad_lines, self.duplicates, self.torn_tail = scan.bad_lines, scan.duplicates, scan.torn_tail
        return scan.records

    def __contains__(self, key: object) -> bool:
        return str(key) in self.keys

    def __len__(self) -> int:
        return len(self.records)

    def append(self, record: dict[str, Any]) -> bool:
        """Append and fsync one record; False (and nothing written) if its key is known."""
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        with self._lock:
            k = record.get(self.key)
            if k is not None and str(k) in self.keys:
                return False
            with open(self.path, "a+b") as fh:
                # The file may end mid-line (it did on load, or another writer was killed
                # since): our record must start on a line of its own, or both are lost.
                start, tail = _last_line(fh)
                if tail and _parses(tail):
                    line = b"\n" + line  # a whole record that lacks only its newline
                elif tail:
                    fh.truncate(start)  # a torn record: cut, not left as a garbage line for readers
                fh.write(line)
                fh.flush()
                os.fsync(fh.fileno())
            self.records.append(record)
            if k is not None:
                self.keys.add(str(k))
        return True


def _last_line(fh: Any, block: int = 1 << 16) -> tuple[int, bytes]:
    """Where the bytes after a binary file's last newline start, and those bytes
    (b"" when the file is empty or ends with a newline); read from the end."""
    pos = fh.seek(0, os.SEEK_END)
    if pos:  # the usual case, on every append: the file ends with a newline
        fh.seek(pos - 1)
        if fh.read(1) == b"\n":
            return pos, b""
    tail = b""
    while pos:
        step = min(block, pos)
        pos -= step
        fh.seek(pos)
        chunk = fh.read(step)
        cut = chunk.rfind(b"\n")
        if cut >= 0:
            return pos + cut + 1, chunk[cut + 1:] + tail
        tail = chunk + tail
    return 0, tail


def _parses(line: bytes) -> bool:
    try:
        json.loads(line.decode("utf-8"))
    except ValueError:
        return False
    return True


def stable_id(*parts: Any, length: int = 12) -> str:
    """A short id derived from content, identical across runs and restarts."""
    text = "\x1f".join(str(p) for p in parts)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]
