"""benchmarks/self_improvement.py: the table has every method's mean ± std, the ratios
to react, and where each method lost its answers."""

import argparse
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
self_improvement = pytest.importorskip("self_improvement")


def test_table_rows_ratios_and_where_answers_were_lost():
    rows = {"react": {"mean": 50.0, "std": 1.0}, "no-finetune": {"mean": 40.0, "std": 2.0},
            "autoact": {"mean": 65.0, "std": 3.0}, "autoact-r2": {"mean": 75.0, "std": None}}
    outcomes = {"react": {"solved": 3, "partly right": 1, "read, not given": 4, "never read": 0}}
    args = argparse.Namespace(model="embedded", seeds=[0, 1], rounds=2)
    text = self_improvement.markdown(
        [{"benchmark": "demo", "metric": "f1", "rows": rows, "samples": 1, "outcomes": outcomes}], args)
    assert "| demo | f1 | 50.0 ± 1.0 | 40.0 ± 2.0 | 65.0 ± 3.0 | 75.0 | 1.30× | 1.50× |" in text
    assert "| demo | react | 3 (38 %) | 1 (12 %) | 4 (50 %) | 0 (0 %) |" in text


def test_no_outcome_table_without_outcomes():
    args = argparse.Namespace(model="embedded", seeds=[0], rounds=1)
    text = self_improvement.markdown([{"benchmark": "demo", "metric": "f1", "rows": {}, "samples": 1}], args)
    assert "Where answers were lost" not in text


def test_report_only_rewrites_a_finished_runs_report_and_refuses_an_unfinished_one(tmp_path):
    import json

    run = tmp_path / "demo"
    seed = run / "eval" / "seed0"
    seed.mkdir(parents=True)
    (seed / "eval.json").write_text(json.dumps({"benchmark": "demo", "seed": 0, "model": "embedded",
                                                "tools": ["Retrieve"]}))
    record = {"id": "q1", "group": "easy", "gold": "Ida Brann", "prediction": "Velmora", "halt_reason": "finish",
              "scores": {"f1": 0.0, "em": 0.0}, "trajectory": [
                  {"action": "Retrieve", "argument": "Velmora", "observation": "Founded by Ida Brann."},
                  {"action": "Finish", "argument": "Velmora", "observation": ""}]}
    (seed / "react.jsonl").write_text(json.dumps(record) + "\n")
    with pytest.raises(SystemExit, match="no finished run"):
        self_improvement.report_again(run)
    (run / "learn-summary.json").write_text(json.dumps({"rounds": [1], "seconds": 12.5}))
    assert self_improvement.report_again(run)["seconds"] == 12.5
    report = json.loads((run / "report" / "report.json").read_text())
    assert report["answer_outcomes"]["react"]["read, not given"] == 1
