"""benchmarks/eval_throughput.py's chained replay groups the recorded requests by question."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
eval_throughput = pytest.importorskip("eval_throughput")


def test_requests_chain_by_question_in_the_order_they_were_sent():
    requests = [
        {"question_id": "b", "started": 2.0, "n": 1},
        {"question_id": "a", "started": 1.0, "n": 2},
        {"question_id": "a", "started": 3.0, "n": 3},
        {"question_id": None, "started": 4.0, "n": 4},
        {"question_id": "b", "started": 5.0, "n": 5},
        {"question_id": None, "started": 6.0, "n": 6},
    ]
    groups = [[r["n"] for r in chain] for chain in eval_throughput.chains(requests)]
    # questions in the order they started; a request without an id stands alone
    assert groups == [[2, 3], [1, 5], [4], [6]]
