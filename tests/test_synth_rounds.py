"""Self-training rounds on the scripted model: round 2 re-solves what round 1 left
unsolved with the round-1 agents and trains on the union."""

from __future__ import annotations

import asyncio
import json

from autoact.graph import build_react_graph
from autoact.graph.group import build_group_graph
from autoact.synth.journal import Journal
from autoact.synth.rounds import LEARNING_FILE, cut_round, record_round, resolve_unsolved, round_dir, solved_ids
from autoact.synth.trajectories import synthesize_trajectories
from autoact.tools import load_task, tool_library
from graph_fakes import scripted


def _round1(demo, tmp_path):
    easy = [i for i in demo.split("train") if i.meta.get("level") == "easy"][:2]
    solved, unsolved = easy
    entity = solved.meta["supporting_titles"][0]
    meta = scripted(
        f" I need {entity}.\nAction: Retrieve[{entity}]", f" It says {solved.answer}.\nAction: Finish[{solved.answer}]",
        " Supported.\nAction: Reflect[right]",
        " I guess.\nAction: Finish[Nobody]", " Hm.\nAction: Reflect[right]",
    )
    context = {"task": "demo", "tools": ["Retrieve", "Lookup"], "max_steps": 4, "max_reflections": 0}
    asyncio.run(synthesize_trajectories(easy, build_react_graph({"meta": meta}), context, tmp_path, concurrency=1))
    return solved, unsolved


def test_round_two_resolves_the_unsolved_and_trains_on_the_union(tmp_path):
    demo = load_task("demo")
    solved, unsolved = _round1(demo, tmp_path)
    tools = [tool_library(demo)[n] for n in ("Retrieve", "Lookup")]
    first = cut_round(tmp_path, 1, demo.description, tools, "transcript", None, 1.0)
    assert first["filter"]["kept"] == 1 and first["records"] == {"plan": 2, "tool": 2, "reflect": 1}
    assert solved_ids(Journal(tmp_path / "trajectories.jsonl").records) == {solved.id}

    # round 2: the round-1 agents (here scripted) get only the unsolved question, twice
    entity = unsolved.meta["supporting_titles"][0]
    plan = scripted(f" I need {entity}.\nAction: Retrieve", f" The paragraph says {unsolved.answer}.\nAction: Finish",
                    " No idea.\nAction: Finish")
    tool = scripted(f"{entity}]", f"{unsolved.answer}]", "Nobody]")
    reflect = scripted(" Supported.\nAction: Reflect[right]", " Unsupported.\nAction: Reflect[right]")
    graph = build_group_graph({"plan": plan, "tool": tool, "reflect": reflect})
    context = {"task": "demo", "tools": ["Retrieve", "Lookup"], "max_steps": 4, "max_reflections": 0}
    report = asyncio.run(resolve_unsolved([solved, unsolved], graph, context, tmp_path, 2, samples=2,
                                          temperature=0.9, concurrency=1, tools=["Retrieve", "Lookup"]))
    assert report["unsolved_before"] == 1 and report["episodes"] == 2 and report["newly_solved"] == 1
    records = Journal(tmp_path / "trajectories.jsonl").records
    new = [r for r in records if r.get("round") == 2]
    assert {r["instance_id"] for r in new} == {unsolved.id} and {r["origin"] for r in new} == {"round-2"}
    assert [r["sample"] for r in new] == ["g2.0", "g2.1"]

    second = cut_round(tmp_path, 2, demo.description, tools, "transcript", None, 1.0)
    assert second["filter"]["kept"] == 2 and second["kept_by_origin"] == {"zero-shot": 1, "round-2": 1}
    out = round_dir(tmp_path, 2)
    kept = [json.loads(line) for line in (out / "kept.jsonl").read_text().splitlines()]
    assert {r["instance_id"] for r in kept} == {solved.id, unsolved.id}  # the union
    plan_records = [json.loads(line) for line in (out / "data" / "plan.jsonl").read_text().splitlines()]
    assert {r["id"].split("/")[0] for r in plan_records} == {solved.id, f"{unsolved.id}#g2.0"}
    # round 1's own data is left as it was
    assert len((tmp_path / "data" / "plan.jsonl").read_text().splitlines()) == 2

    # a second call does nothing more: every question now has a kept trajectory
    again = asyncio.run(resolve_unsolved([solved, unsolved], graph, context, tmp_path, 3, samples=1,
                                         temperature=0.9, concurrency=1, tools=["Retrieve", "Lookup"]))
    assert again["episodes"] == 0

    record_round(tmp_path, {"round": 2, "kept": 2})
    record_round(tmp_path, {"round": 1, "kept": 1})
    record_round(tmp_path, {"round": 2, "kept": 2, "newly_solved": 1})
    learning = json.loads((tmp_path / LEARNING_FILE).read_text())
    assert [r["round"] for r in learning["rounds"]] == [1, 2] and learning["rounds"][1]["newly_solved"] == 1
