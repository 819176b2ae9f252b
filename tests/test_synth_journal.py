"""Journals keep every readable record and never rewrite a file on load; atomic
writes (atomic_write_jsonl, atomic_write_text) leave the old file or the whole new one."""

from __future__ import annotations

import json
import logging
import os
import stat
import threading

import pytest

from autoact.io import atomic_write_jsonl, atomic_write_text
from autoact.synth.journal import Journal


def _ids(path) -> list[str]:
    return [r["id"] for r in Journal(path).records]


# ---- loading ---------------------------------------------------------------------------------------------
def test_bad_lines_in_the_middle_are_counted_and_the_rest_kept(tmp_path, caplog):
    path = tmp_path / "j.jsonl"
    raw = b'{"id": "a"}\nnot json at all\n\n\xff\xfe{"id": "z"}\n{"id": "b"}\n{"id": "c"}\n'
    path.write_bytes(raw)
    with caplog.at_level(logging.WARNING, logger="autoact.synth.journal"):
        journal = Journal(path)
    assert [r["id"] for r in journal.records] == ["a", "b", "c"]
    assert journal.bad_lines == [2, 3, 4] and journal.skipped == 3 and not journal.torn_tail
    assert "3 unreadable line(s) skipped (line 2, 3, 4)" in caplog.text and str(path) in caplog.text
    assert path.read_bytes() == raw  # loading never rewrites the file


def test_a_json_line_that_is_not_an_object_is_counted_as_bad(tmp_path):
    path = tmp_path / "j.jsonl"
    path.write_text('{"id": "a"}\n[1, 2]\n{"id": "b"}\n')
    journal = Journal(path)
    assert [r["id"] for r in journal.records] == ["a", "b"]
    assert journal.bad_lines == [2] and journal.skipped == 1


def test_duplicates_are_counted_not_loaded(tmp_path):
    path = tmp_path / "j.jsonl"
    path.write_text('{"id": "a"}\n{"id": "b"}\n{"id": "a", "again": true}\n')
    journal = Journal(path)
    assert journal.records == [{"id": "a"}, {"id": "b"}]
    assert journal.duplicates == 1 and journal.bad_lines == [] and journal.skipped == 1


def test_a_complete_last_line_without_newline_is_kept(tmp_path):
    path = tmp_path / "j.jsonl"
    path.write_text('{"id": "a"}\n{"id": "b"}')
    journal = Journal(path)
    assert [r["id"] for r in journal.records] == ["a", "b"] and not journal.torn_tail
    assert journal.append({"id": "c"})
    assert _ids(path) == ["a", "b", "c"]


# ---- appending after a torn line -------------------------------------------------------------------------
def test_an_open_journal_appends_a_readable_record_after_a_torn_line(tmp_path):
    path = tmp_path / "j.jsonl"
    path.write_text('{"id": "a"}\n{"id": "b"}\n')
    journal = Journal(path)  # open, then another writer is killed mid-line
    with open(path, "ab") as fh:
        fh.write(b'{"id": "x", "rew')
    assert journal.append({"id": "c"})
    reloaded = Journal(path)
    assert [r["id"] for r in reloaded.records] == ["a", "b", "c"]
    assert reloaded.skipped == 0  # the torn fragment was cut by the append, not glued to its record


def test_a_journal_loaded_with_a_torn_tail_keeps_it_and_appends_on_a_new_line(tmp_path):
    path = tmp_path / "j.jsonl"
    raw = '{"id": "a"}\n{"id": "b"}\n{"id": "c", "x": '
    path.write_text(raw)
    journal = Journal(path)
    assert [r["id"] for r in journal.records] == ["a", "b"] and journal.torn_tail and journal.bad_lines == []
    assert path.read_text() == raw  # untouched by the load
    assert journal.append({"id": "c"}) and not journal.append({"id": "b"})
    assert path.read_text() == '{"id": "a"}\n{"id": "b"}\n{"id": "c"}\n'  # the append replaced the torn line


def test_the_torn_line_is_found_past_one_read_block(tmp_path):
    path = tmp_path / "j.jsonl"
    path.write_text('{"id": "a"}\n{"id": "b", "text": "' + "x" * 200_000)  # a long record, cut short
    journal = Journal(path)
    assert journal.torn_tail and journal.append({"id": "c"})
    assert path.read_text() == '{"id": "a"}\n{"id": "c"}\n'


# ---- atomic writes ---------------------------------------------------------------------------------------
def test_write_jsonl_is_complete_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "out" / "kept.jsonl"
    records = [{"id": str(i), "text": "é" * i} for i in range(50)]
    assert atomic_write_jsonl(target, records) == 50
    assert [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()] == records
    assert os.listdir(target.parent) == ["kept.jsonl"]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask  # the mode open() gives, not mkstemp's 0600


def _failing_records():
    yield {"id": "new"}
    raise RuntimeError("the producer failed")


@pytest.mark.parametrize("write", [
    lambda path: atomic_write_jsonl(path, _failing_records()),
    lambda path: atomic_write_text(path, "new \ud800"),  # a lone surrogate cannot be encoded
], ids=["atomic_write_jsonl", "atomic_write_text"])
def test_a_failed_write_keeps_the_old_file_and_removes_the_temporary(tmp_path, write):
    target = tmp_path / "kept.jsonl"
    target.write_text('{"id": "old"}\n')
    with pytest.raises((RuntimeError, UnicodeEncodeError)):
        write(target)
    assert target.read_text() == '{"id": "old"}\n'
    assert os.listdir(tmp_path) == ["kept.jsonl"]


def test_write_jsonl_fsyncs_the_file_before_the_rename_and_the_folder_after(tmp_path, monkeypatch):
    target = tmp_path / "kept.jsonl"
    real_fsync, seen = os.fsync, []

    def spy(fd):
        seen.append(("folder" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file", target.exists()))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    atomic_write_jsonl(target, [{"id": "a"}])
    assert seen == [("file", False), ("folder", True)]


def test_concurrent_writers_of_one_target_do_not_clash(tmp_path):
    target = tmp_path / "kept.jsonl"
    errors: list[BaseException] = []

    def writer(name: str) -> None:
        try:
            for round_ in range(40):
                atomic_write_jsonl(target, ({"writer": name, "round": round_, "n": i} for i in range(200)))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(name,)) for name in ("one", "two")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    rows = [json.loads(line) for line in target.read_text().splitlines()]
    assert len(rows) == 200 and len({(r["writer"], r["round"]) for r in rows}) == 1  # one writer's whole file
    assert os.listdir(tmp_path) == ["kept.jsonl"]
