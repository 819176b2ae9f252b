"""benchmarks/eval_throughput.py: the chained replay groups the recorded requests by question, and every phase can start from an empty prefix cache."""

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


def test_the_prefix_cache_is_emptied_where_the_server_can():
    import httpx
    import stub_server

    # a port nothing listens on: no endpoint, no reset
    assert eval_throughput.reset_prefix_cache("http://127.0.0.1:9/v1") is False
    with stub_server.running() as url:
        prompt = "Question: where? " * 40

        def send() -> dict:
            before = eval_throughput.cache_metrics(url)
            httpx.post(f"{url}/completions", json={"model": "base", "prompt": prompt}, timeout=5.0)
            return {k: eval_throughput.cache_metrics(url)[k] - before[k] for k in ("queries", "hits")}

        send()
        assert send()["hits"] > 0  # the same prompt again: cached
        assert eval_throughput.reset_prefix_cache(url) is True
        assert send()["hits"] == 0  # emptied


def test_the_replay_sends_the_loops_sampling_parameters():
    params = {"model": "base", "temperature": 0.5, "top_p": 0.75, "seed": 3, "n": 1, "logprobs": None,
              "extra_body": {"top_k": 40}}
    assert eval_throughput.sampling_of(params) == {"temperature": 0.5, "top_p": 0.75, "seed": 3}
    assert eval_throughput.sampling_of({"model": "base"}) == {}
