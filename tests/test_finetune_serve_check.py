"""Serve-check logic that needs no server (the served path: test_finetune_roundtrip)."""

from __future__ import annotations

import json

from finetune_samples import write_run

from autoact.finetune.serve_check import CheckAnswer, check_prompts, recorded_endpoint
from autoact.settings import Settings


def test_check_prompts_take_each_adapters_own_data(tmp_path):
    write_run(tmp_path, per_agent=2)
    prompts = check_prompts(tmp_path, ["plan", "tool", "reflect", "one-agent"])
    assert {n: p["agent"] for n, p in prompts.items()} == {
        "plan": "plan", "tool": "tool", "reflect": "reflect", "one-agent": "plan"}
    assert prompts["tool"]["id"] == "demo-0-tool-0"


def test_endpoint_setting_wins_over_the_record(tmp_path):
    (tmp_path / "endpoint.json").write_text(json.dumps({"base_url": "http://127.0.0.1:1234/v1/"}))
    assert recorded_endpoint(Settings(home=tmp_path)) == "http://127.0.0.1:1234/v1"
    explicit = Settings(home=tmp_path, server={"base_url": "http://10.0.0.1:8000/v1"})
    assert recorded_endpoint(explicit) == "http://10.0.0.1:8000/v1"
    (tmp_path / "endpoint.json").write_text("{broken")
    assert recorded_endpoint(Settings(home=tmp_path)) is None
    assert recorded_endpoint(Settings(home=tmp_path / "none")) is None


def test_exact_ignores_surrounding_whitespace():
    answer = CheckAnswer("plan", "r1", "Q?", "Thought: x\nAction: Retrieve", " Thought: x\nAction: Retrieve\n")
    assert answer.exact
    assert not CheckAnswer("plan", "r1", "Q?", "Thought: x", "Thought: y").exact
