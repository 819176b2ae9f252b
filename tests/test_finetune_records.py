"""Training records: validation with clear errors, one-agent union, general-data mixing, hashing."""

from __future__ import annotations

import json

import pytest
from finetune_samples import general_rows, plan_record, write_jsonl, write_run

from autoact.finetune.records import (
    ONE_AGENT,
    RecordError,
    load_agent_records,
    mix_general,
    read_jsonl,
    records_sha256,
)


def test_reads_valid_records(tmp_path):
    path = write_jsonl(tmp_path / "plan.jsonl", [plan_record(i) for i in range(3)])
    records = read_jsonl(path, require_agent="plan")
    assert [r["id"] for r in records] == ["demo-0-plan-0", "demo-1-plan-0", "demo-2-plan-0"]
    assert records[0]["messages"][-1]["content"].startswith("Thought: I need the birthplace of")


@pytest.mark.parametrize(
    "line, message",
    [
        ("{not json", "not valid JSON"),
        (json.dumps({"id": "a", "agent": "plan"}), "with 'messages'"),
        (json.dumps({"id": "a", "agent": "plan", "messages": [{"role": "user", "content": "q"}]}), "at least two"),
        (
            json.dumps({"id": "a", "agent": "plan", "messages": [
                {"role": "user", "content": "q"}, {"role": "user", "content": "x"}]}),
            "must be from the assistant",
        ),
        (
            json.dumps({"id": "a", "agent": "plan", "messages": [
                {"role": "user", "content": "q"}, {"role": "robot", "content": "x"}]}),
            "role 'robot'",
        ),
        (
            json.dumps({"id": "a", "agent": "plan", "messages": [
                {"role": "user", "content": "q"}, {"role": "assistant", "content": "  "}]}),
            "target (last message) is empty",
        ),
        (
            json.dumps({"agent": "plan", "messages": [
                {"role": "user", "content": "q"}, {"role": "assistant", "content": "x"}]}),
            "no 'id' string",
        ),
        (json.dumps({**plan_record(0), "agent": "tool"}), "record for agent 'tool' in the 'plan' file"),
    ],
)
def test_bad_records_name_file_and_line(tmp_path, line, message):
    path = tmp_path / "plan.jsonl"
    path.write_text(json.dumps(plan_record(0)) + "\n" + line + "\n")
    with pytest.raises(RecordError) as info:
        read_jsonl(path, require_agent="plan")
    assert message in str(info.value)
    assert f"{path}:2" in str(info.value)


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(RecordError, match="no such data file"):
        read_jsonl(tmp_path / "absent.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(RecordError, match="holds no records"):
        read_jsonl(tmp_path / "empty.jsonl")
    with pytest.raises(RecordError, match="run the synthesis step first"):
        load_agent_records(tmp_path, "plan")
    with pytest.raises(RecordError, match="invalid agent name '../plan'"):
        load_agent_records(tmp_path, "../plan")


def test_one_agent_takes_all_three_files(tmp_path):
    write_run(tmp_path, per_agent=3)
    records, files = load_agent_records(tmp_path, ONE_AGENT)
    assert [f.name for f in files] == ["plan.jsonl", "tool.jsonl", "reflect.jsonl"]
    assert sorted(r["agent"] for r in records) == ["plan"] * 3 + ["reflect"] * 3 + ["tool"] * 3
    plan_only, _ = load_agent_records(tmp_path, "plan")
    assert {r["agent"] for r in plan_only} == {"plan"}


def test_general_rows_get_ids_and_agent(tmp_path):
    path = write_jsonl(tmp_path / "general.jsonl", general_rows(3))
    rows = read_jsonl(path, general=True)
    assert [r["agent"] for r in rows] == ["general"] * 3
    assert len({r["id"] for r in rows}) == 3


@pytest.mark.parametrize("ratio", [0.1, 0.25, 0.5])
def test_general_mix_reaches_the_ratio(ratio):
    agent = [plan_record(i) for i in range(30)]
    general = [{"id": f"g{k}", "agent": "general", "messages": r["messages"]} for k, r in enumerate(general_rows(50))]
    mixed = mix_general(agent, general, ratio, seed=0, salt="plan")
    n_general = sum(r["agent"] == "general" for r in mixed)
    assert sum(r["agent"] == "plan" for r in mixed) == 30  # every agent record is kept
    assert abs(n_general / len(mixed) - ratio) < 0.02
    assert len({r["id"] for r in mixed if r["agent"] == "general"}) == n_general  # no repeats while the pool lasts


def test_general_mix_is_deterministic_per_seed_and_salt():
    agent = [plan_record(i) for i in range(20)]
    general = [{"id": f"g{k}", "agent": "general", "messages": r["messages"]} for k, r in enumerate(general_rows(40))]
    ids = lambda rows: [r["id"] for r in rows]  # noqa: E731
    first = mix_general(agent, general, 0.3, seed=1, salt="plan")
    assert ids(first) == ids(mix_general(agent, general, 0.3, seed=1, salt="plan"))
    assert ids(first) != ids(mix_general(agent, general, 0.3, seed=2, salt="plan"))
    assert ids(first) != ids(mix_general(agent, general, 0.3, seed=1, salt="tool"))


def test_general_mix_reuses_a_small_pool_and_rejects_bad_ratios():
    agent = [plan_record(i) for i in range(10)]
    general = [{"id": "g0", "agent": "general", "messages": general_rows(1)[0]["messages"]}]
    mixed = mix_general(agent, general, 0.5, seed=0)
    assert sum(r["id"] == "g0" for r in mixed) == 10
    assert mix_general(agent, general, 0.0, seed=0) == agent
    for bad in (-0.1, 1.0, 1.5):
        with pytest.raises(RecordError, match=r"in \[0, 1\)"):
            mix_general(agent, general, bad, seed=0)
    with pytest.raises(RecordError, match="empty"):
        mix_general(agent, [], 0.2, seed=0)


def test_records_hash_depends_on_content_and_order():
    a, b = plan_record(0), plan_record(1)
    assert records_sha256([a, b]) == records_sha256([json.loads(json.dumps(a)), b])
    assert records_sha256([a, b]) != records_sha256([b, a])
    changed = json.loads(json.dumps(a))
    changed["messages"][-1]["content"] += "!"
    assert records_sha256([changed, b]) != records_sha256([a, b])


def test_transcript_records_are_read_and_checked(tmp_path):
    good = {"id": "t1/plan/0", "agent": "plan", "format": "transcript", "prompt": "Question: q\nThought:",
            "completion": " I need q.\nAction: Retrieve"}
    path = tmp_path / "plan.jsonl"
    path.write_text(json.dumps(good) + "\n")
    assert read_jsonl(path, require_agent="plan") == [good]
    for broken, message in (({**good, "completion": " "}, "completion"), ({**good, "prompt": 3}, "'prompt' string")):
        path.write_text(json.dumps(broken) + "\n")
        with pytest.raises(RecordError, match=message):
            read_jsonl(path)
    # the hash covers the text a transcript record trains on
    assert records_sha256([good]) != records_sha256([{**good, "completion": " other\nAction: Finish"}])
