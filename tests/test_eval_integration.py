"""A small evaluation end to end: two methods on a few shared HotpotQA questions
against the real vLLM server with the embedded model, then the report. The table's
numbers must be the means of the per-question records."""

from __future__ import annotations

import json
import os
import re

import pytest

from autoact.eval.aggregate import mean
from autoact.eval.report import write_report
from autoact.eval.runner import run_eval
from autoact.serving.vllm_server import VLLMServer

pytestmark = pytest.mark.slow

METHODS = ("react", "cot")
HALT_REASONS = {"finish", "max_reflections", "max_steps", "context", "parse_error"}


@pytest.fixture(scope="module")
def easy_file(shared_data):
    path = shared_data / "hotpotqa" / "easy.jsonl"
    if not path.is_file():
        pytest.skip(f"shared HotpotQA questions not found at {path}")
    return path


@pytest.fixture(scope="module")
def server(real_settings, embedded_model):
    server = VLLMServer(real_settings, embedded_model)  # no adapters: both methods use the base model
    server.start()
    try:
        yield server
    finally:
        pid = server.process.pid
        server.stop()
        with pytest.raises(ProcessLookupError):
            os.killpg(pid, 0)


@pytest.fixture(scope="module")
def evaluated(server, real_settings, easy_file, tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    settings = real_settings.model_copy(update={"run_dir": root / "run"})
    out = root / "out"
    kwargs = dict(data=[easy_file], limit=3, concurrency=4, base_url=server.base_url, max_steps=4)
    result = run_eval(settings, "hotpotqa", list(METHODS), out, **kwargs)
    again = run_eval(settings, "hotpotqa", list(METHODS), out, **kwargs)  # resumed: nothing left to do
    paths = write_report([out], root / "report")
    return result, again, out, paths


def _records(out, method):
    return [json.loads(line) for line in (out / f"{method}.jsonl").read_text().splitlines()]


def test_records_per_question(evaluated):
    result, again, out, _ = evaluated
    ids = None
    for method in METHODS:
        records = _records(out, method)
        assert len(records) == 3 and result["runs"][method]["failed"] == 0
        assert ids is None or {r["id"] for r in records} == ids  # the same questions for both
        ids = {r["id"] for r in records}
        for r in records:
            assert r["group"] == "easy" and r["gold"]
            assert r["calls"] >= 1 and r["tokens"]["prompt"] > 0 and r["tokens"]["completion"] > 0
            assert r["latency_s"] > 0 and r["halt_reason"] in HALT_REASONS
            assert 0.0 <= r["scores"]["f1"] <= 1.0 and r["scores"]["em"] in (0.0, 1.0)
        assert result["runs"][method]["completion_tokens"] == sum(r["tokens"]["completion"] for r in records)
        assert again["runs"][method]["done"] == 0 and again["runs"][method]["skipped_done"] == 3
    react = _records(out, "react")
    assert any(s["action"] != "Finish" for r in react for s in r["trajectory"])  # react used tools
    assert all(len(r["trajectory"]) <= 1 for r in _records(out, "cot"))  # cot made one step at most


def test_report_files_and_the_table_equal_the_record_means(evaluated):
    _, _, out, paths = evaluated
    for key in ("markdown", "html", "json", "Score by method and group", "Cost against score"):
        assert paths[key].is_file() and paths[key].stat().st_size > 0
    assert paths["Score by method and group"].read_bytes()[:4] == b"\x89PNG"
    report = json.loads(paths["json"].read_text())
    md = paths["markdown"].read_text()
    html = paths["html"].read_text()
    for method in METHODS:
        records = _records(out, method)
        for metric in ("f1", "em"):
            expected = 100 * mean(r["scores"][metric] for r in records)
            cells = report["scores"][metric][method]
            assert cells["easy"]["mean"] == pytest.approx(expected)
            assert cells["All"]["mean"] == pytest.approx(expected)  # one level: All is its mean
        f1 = 100 * mean(r["scores"]["f1"] for r in records)
        em = 100 * mean(r["scores"]["em"] for r in records)
        assert f"| {method} | {f1:.2f} | {f1:.2f} |" in md and f"| {method} | {em:.2f} | {em:.2f} |" in md
        assert f"<td>{f1:.2f}</td>" in html
        completion = mean(r["tokens"]["completion"] for r in records)
        assert report["cost"][method]["completion_tokens_per_q"]["mean"] == pytest.approx(completion)
        assert re.search(rf"\| {method} \| [\d.]+ \| [\d.]+ \| {completion:.1f} \|", md)
