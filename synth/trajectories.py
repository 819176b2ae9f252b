"""Trajectory synthesis: the meta-agent solves each instance zero-shot.

Each instance runs through the single-agent ReAct graph (the graph the ReAct
baseline uses too) with the selected tools: Thought / Action / Observation steps,
``Finish[answer]``, then ``Reflect[right|wrong]`` (one retry after wrong), up to a
step and context limit. Episodes run ``concurrency`` at a time against the vLLM
endpoint; each finished one is appended to ``RUN/trajectories.jsonl`` at once, with
its steps, reward (F1 / EM, or accuracy), halt reason and token counts. Episodes
that failed (server errors after retries) go to ``RUN/trajectory_errors.jsonl`` and
are tried again when the stage is restarted.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

from langchain_core.messages import HumanMessage

from autoact.concurrency import Progress, run_bounded
from autoact.synth.journal import Journal
from autoact.tools import TaskInstance

TRAJECTORIES_FILE = "trajectories.jsonl"
ERRORS_FILE = "trajectory_errors.jsonl"


def episode_id(instance: TaskInstance, sample: int) -> str:
    return instance.id if sample == 0 else f"{instance.id}#{sample}"


def episode_record(
    instance: TaskInstance, state: dict[str, Any], tools: Sequence[str], seconds: float, sample: int = 0
) -> dict:
    scores = state.get("scores") or {}
    return {
        "id": episode_id(instance, sample),
        "instance_id": instance.id,
        "sample": sample,
        "status": "ok",
        "question": instance.question,
        "gold": instance.answer,
        "tools": list(tools),
        "trajectory": list(state.get("trajectory") or []),
        "reflections": list(state.get("reflections") or []),
        "answer": state.get("answer"),
        "reward": state.get("reward"),
        "scores": scores,
        "halt_reason": state.get("halt_reason"),
        "usage": state.get("usage") or {},
        "seconds": round(seconds, 3),
        "meta": instance.meta,
    }


def completion_tokens(usage: dict[str, Any]) -> int:
    """Completion tokens summed over roles (``usage`` as the graphs record it)."""
    total = 0
    for value in (usage or {}).values():
        if isinstance(value, dict):
            total += int(value.get("completion_tokens") or value.get("output_tokens") or 0)
    return total


async def synthesize_trajectories(
    instances: Sequence[TaskInstance],
    graph: Any,
    context: dict[str, Any],
    run_dir: Path,
    concurrency: int,
    samples: int = 1,
    sample_temperature: float = 0.7,
) -> dict[str, Any]:
    """Run the graph on every (instance, sample) not yet in the journal.

    Sample 0 is greedy (``context``'s temperature); further samples, if asked for,
    run at ``sample_temperature``: more chances for a small model to solve an
    instance, while the filter still keeps only full-reward episodes.
    """
    journal = Journal(Path(run_dir) / TRAJECTORIES_FILE)
    errors = Journal(Path(run_dir) / ERRORS_FILE, key="attempt")
    todo = [(inst, j) for inst in instances for j in range(samples) if episode_id(inst, j) not in journal]
    tools = list(context.get("tools") or [])
    progress = Progress(total=len(todo), desc="trajectories")

    async def worker(item: tuple[TaskInstance, int]) -> dict[str, Any]:
        instance, sample = item
        # each extra sample gets its own engine seed, else equal samples would repeat
        run_context = context if sample == 0 else {
            **context, "temperature": sample_temperature, "seed": (context.get("seed") or 0) + sample
        }
        start = time.perf_counter()
        try:
            state = await graph.ainvoke(
                {"messages": [HumanMessage(instance.question)], "instance": instance.to_dict()},
                context=run_context,
            )
        except Exception as exc:
            errors.append({
                "attempt": f"{episode_id(instance, sample)}@{time.time():.3f}",
                "id": episode_id(instance, sample),
                "error": f"{type(exc).__name__}: {exc}",
            })
            return {"failed": True}
        record = episode_record(instance, state, tools, time.perf_counter() - start, sample)
        journal.append(record)
        return {"kept": (record["reward"] or 0) >= 1.0, "tokens": completion_tokens(record["usage"])}

    await run_bounded(todo, worker, concurrency, progress)
    summary = progress.summary()
    rewards = [r["reward"] for r in journal.records if r.get("reward") is not None]
    return {
        "instances": len(instances),
        "synthesized": len(journal),
        "this_run": summary,
        "failed_this_run": summary["failed"],
        "mean_reward": round(sum(rewards) / len(rewards), 4) if rewards else None,
        "halt_reasons": _count(r.get("halt_reason") for r in journal.records),
    }


def _count(values) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[str(v)] = out.get(str(v), 0) + 1
    return out
