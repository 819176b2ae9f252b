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
