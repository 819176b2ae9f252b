"""Self-training rounds (beyond AutoAct, which trains once).

Round 1 is AutoAct itself: the meta-agent's trajectories, filtered, train the plan,
tool and reflect adapters. Round r+1 gives the synthesized questions that no kept
trajectory solves yet to the round-r sub-agents (group planning with their
adapters, sampled), appends their episodes to the same trajectory journal (origin
``round-<r+1>``), filters the union (still one kept trajectory per question, full
reward, own verdict right) and cuts it into a new round's training data, from
which fresh adapters are trained. The per-round counts go to ``RUN/learning.json``.

Layout: round 1 keeps the run's usual files (``RUN/kept.jsonl``, ``RUN/data``,
``RUN/adapters``); round r >= 2 writes ``RUN/rounds/r<r>/{kept.jsonl,data,adapters}``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Sequence

from langchain_core.messages import HumanMessage

from autoact.concurrency import Progress, run_bounded
from autoact.io import atomic_write_jsonl, atomic_write_text
from autoact.synth.differentiate import differentiate
from autoact.synth.filter import filter_trajectories
from autoact.synth.journal import Journal
from autoact.synth.trajectories import ERRORS_FILE, TRAJECTORIES_FILE, episode_record
from autoact.tools import TaskInstance
from autoact.usage import usage_totals

LEARNING_FILE = "learning.json"
ROUND_ORIGIN = "round-{}"


def round_dir(run_dir: Path, round_number: int) -> Path:
    """Where a round's kept trajectories, data and adapters live."""
    return Path(run_dir) if round_number == 1 else Path(run_dir) / "rounds" / f"r{round_number}"


def round_sample(round_number: int, j: int) -> str:
    return f"g{round_number}.{j}"


def solved_ids(records: Sequence[dict], min_reward: float = 1.0) -> set[str]:
    kept, _ = filter_trajectories(records, None, min_reward)
    return {str(r.get("instance_id", r["id"])) for r in kept}


async def resolve_unsolved(
    instances: Sequence[TaskInstance],
    graph: Any,
    context: dict[str, Any],
    run_dir: Path,
    round_number: int,
    samples: int,
    temperature: float,
    concurrency: int,
    tools: Sequence[str],
    min_reward: float = 1.0,
) -> dict[str, Any]:
    """The round's episodes: every instance without a kept trajectory, ``samples``
    times with the previous round's agents (``graph`` and ``context``: group
    planning with its adapters), sampled at ``temperature`` with a seed per sample."""
    journal = Journal(Path(run_dir) / TRAJECTORIES_FILE)
    errors = Journal(Path(run_dir) / ERRORS_FILE, key="attempt")
    solved = solved_ids(journal.records, min_reward)
    todo = [
        (inst, j) for inst in instances if inst.id not in solved for j in range(samples)
        if f"{inst.id}#{round_sample(round_number, j)}" not in journal
    ]
    progress = Progress(total=len(todo), desc=f"round {round_number}")

    async def worker(item: tuple[TaskInstance, int]) -> dict[str, Any]:
        instance, j = item
        sample = round_sample(round_number, j)
        run_context = {**context, "temperature": temperature, "seed": 1000 * round_number + j}
        start = time.perf_counter()
        try:
            state = await graph.ainvoke(
                {"messages": [HumanMessage(instance.question)], "instance": instance.to_dict()}, context=run_context
            )
        except Exception as exc:
            errors.append({"attempt": f"{instance.id}#{sample}@{time.time():.3f}", "id": f"{instance.id}#{sample}",
                           "error": f"{type(exc).__name__}: {exc}"})
            return {"failed": True}
        record = episode_record(instance, state, tools, time.perf_counter() - start, sample)
        record["origin"] = ROUND_ORIGIN.format(round_number)
        record["round"] = round_number
        journal.append(record)
        return {"kept": (record["reward"] or 0) >= 1.0, "tokens": usage_totals(record["usage"])[2]}

    try:
        await run_bounded(todo, worker, concurrency, progress)
    finally:
        progress.close()
    newly = solved_ids(journal.records, min_reward) - solved
    return {"episodes": len(todo), "unsolved_before": len({i.id for i, _ in todo}), "newly_solved": len(newly),
            **progress.summary()}


def cut_round(
    run_dir: Path, round_number: int, task_description: str, tool_specs: Sequence[Any], prompt_format: str,
    max_kept: int | None, min_reward: float,
) -> dict[str, Any]:
    """Filter the union of every round's episodes and write the round's kept
    trajectories and training data; returns the filter report and record counts."""
    records = Journal(Path(run_dir) / TRAJECTORIES_FILE).records
    kept, report = filter_trajectories(records, max_kept, min_reward)
    out = round_dir(run_dir, round_number)
    atomic_write_jsonl(out / "kept.jsonl", kept)
    counts = differentiate(kept, task_description, tool_specs, out / "data", prompt_format=prompt_format)
    by_origin: dict[str, int] = {}
    for r in kept:
        by_origin[r.get("origin", "zero-shot")] = by_origin.get(r.get("origin", "zero-shot"), 0) + 1
    return {"filter": report, "records": counts, "kept_by_origin": by_origin}


def record_round(run_dir: Path, entry: dict[str, Any]) -> dict[str, Any]:
    """Add (or replace) one round's entry in ``RUN/learning.json``."""
    path = Path(run_dir) / LEARNING_FILE
    data = json.loads(path.read_text()) if path.is_file() else {"rounds": []}
    data["rounds"] = [r for r in data["rounds"] if r.get("round") != entry["round"]] + [entry]
    data["rounds"].sort(key=lambda r: r["round"])
    atomic_write_text(path, json.dumps(data, indent=2))
    return data


__all__ = ["LEARNING_FILE", "cut_round", "record_round", "resolve_unsolved", "round_dir", "solved_ids"]
