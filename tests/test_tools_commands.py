"""The `autoact tools` commands: list, try (several actions in one episode), index."""

import json

import pytest

from autoact.app.cli import main


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOACT_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)  # no stray config file
    return tmp_path / "home"


def test_list(capsys):
    assert main(["tools", "list"]) == 0
    out = capsys.readouterr().out
    for usage in ("Retrieve[entity]", "Lookup[keyword]", "Search[query]", "Calculator[expression]",
                  "Python[code]", "Image2Text[image]", "Finish[answer]", "Reflect[right|wrong]"):
        assert usage in out
    assert "* Retrieve[entity]" in out and "  Python[code]" in out  # * marks the task's defaults


def test_list_json(capsys):
    assert main(["tools", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == ["Retrieve", "Lookup", "Search", "Calculator", "Python", "Image2Text"]


def test_try_runs_actions_in_one_episode(capsys):
    code = main(["tools", "try", "Retrieve[Velmora]", "Lookup[harbour]", "Lookup[harbour]",
                 "Calculator[2 ^ 3]", "Finish[Ida Brann]", "--question-id", "demo-005"])
    assert code == 0
    out = capsys.readouterr().out
    assert "Question (demo-005): Who founded Velmora?" in out
    assert "(Result 1 / 3)" in out and "(Result 2 / 3)" in out
    assert "Observation: 8" in out and "reward=1.0" in out


def test_try_custom_corpus_and_malformed_action(tmp_path, capsys):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text(json.dumps({"title": "Zed", "text": "Zed is a letter. It is last."}) + "\n")
    data = tmp_path / "q.jsonl"
    data.write_text(json.dumps({"question": "What is Zed?", "answer": "a letter"}) + "\n")
    code = main(["tools", "try", "--task", "custom", "--data", str(data), "--corpus", str(corpus),
                 "Retrieve[zed]", "Search[last letter]", "Retrieve Zed"])
    assert code == 0
    out = capsys.readouterr().out
    assert "Observation: Zed is a letter. It is last." in out
    assert "[1] Zed:" in out and "Invalid action" in out


def test_index_builds_once_then_loads(home, capsys):
    assert main(["tools", "index"]) == 0
    assert "bm25_build_s" in capsys.readouterr().out
    assert list((home / "indexes").iterdir())
    from autoact.tools import index

    index._INDEXES.clear()  # as in a new process: the saved index is read back
    assert main(["tools", "index"]) == 0
    out = capsys.readouterr().out
    assert "bm25_load_s" in out and "bm25_build_s" not in out


def test_bad_input_is_a_one_line_error(capsys):
    assert main(["tools", "try", "--task", "custom", "Retrieve[x]"]) == 1
    assert "needs --data" in capsys.readouterr().err
