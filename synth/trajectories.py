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
from autoact.usage import usage_totals

TRAJECTORIES_FILE = "trajectories.jsonl"
ERRORS_FILE = "trajectory_errors.jsonl"


RATIONALIZED = "r"  # sample-id prefix of hinted (rationalized) episodes


def episode_id(instance: TaskInstance, sample: int | str) -> str:
    return instance.id if sample == 0 else f"{instance.id}#{sample}"


def hinted_question(instance: TaskInstance) -> str:
    """The question with its gold answer (and source paragraph) as a hint.

    STaR's rationalization: where the model cannot solve an instance, it is shown
    the answer and asked to produce the steps that reach it; the episode is then
    trained on as if the hint had not been there (the record keeps the original
    question), and only if the filter accepts it.
    """
    titles = instance.meta.get("source_titles") or instance.meta.get("supporting_titles") or []
    where = f" It is in the paragraph titled {titles[0]}." if titles else ""
    return f"{instance.question} (Hint: the answer is {instance.answer}.{where})"


def mentions_hint(record: dict) -> bool:
    texts = [s.get("thought", "") for s in record["trajectory"]] + [r.get("thought", "") for r in record["reflections"]]
    return any("hint" in t.lower() for t in texts)


def episode_record(
    instance: TaskInstance, state: dict[str, Any], tools: Sequence[str], seconds: float, sample: int | str = 0
) -> dict:
    scores = state.get("score") or {}
    record = {
        "id": episode_id(instance, sample),
        "instance_id": instance.id,
        "sample": sample,
        "status": "ok",
        "question": instance.question,
        "gold": instance.answer,
        "choices": list(instance.choices) if instance.choices else None,
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
        "origin": "rationalized" if str(sample).startswith(RATIONALIZED) else "zero-shot",
    }
    if record["origin"] == "rationalized" and mentions_hint(record):
        record["reward"] = 0.0  # it leans on the hint; trained without it, it would teach nonsense
        record["hint_leak"] = True
    return record


async def synthesize_trajectories(
    instances: Sequence[TaskInstance],
    graph: Any,
    context: dict[str, Any],
    run_dir: Path,
    concurrency: int,
    samples: int = 1,
    sample_temperature: float = 0.7,
    rationalize: bool = False,
    greedy_first: bool = True,
) -> dict[str, Any]:
    """Run the graph on every (instance, sample) not yet in the journal.

    Sample 0 is greedy (``context``'s temperature) unless ``greedy_first`` is off;
    further samples, if asked for, run at ``sample_temperature``: more chances for a small model to solve an
    instance, while the filter still keeps only full-reward episodes.
    """
    journal = Journal(Path(run_dir) / TRAJECTORIES_FILE)
    errors = Journal(Path(run_dir) / ERRORS_FILE, key="attempt")
    todo = [(inst, j) for inst in instances for j in range(samples) if episode_id(inst, j) not in journal]
    tools = list(context.get("tools") or [])
    progress = Progress(total=len(todo), desc="trajectories")

    async def worker(item: tuple[TaskInstance, int | str]) -> dict[str, Any]:
        instance, sample = item
        question = instance.question
        if sample == 0 and greedy_first:
            run_context = context
        elif str(sample).startswith(RATIONALIZED):
            run_context, question = context, hinted_question(instance)
        else:  # each extra sample gets its own engine seed, else equal samples would repeat
            run_context = {**context, "temperature": sample_temperature, "seed": (context.get("seed") or 0) + int(sample)}
        start = time.perf_counter()
        try:
            # the graph poses the instance's question: a hinted episode gets a hinted copy
            state = await graph.ainvoke(
                {"messages": [HumanMessage(question)], "instance": {**instance.to_dict(), "question": question}},
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
        return {"kept": (record["reward"] or 0) >= 1.0, "tokens": usage_totals(record["usage"])[2]}

    await run_bounded(todo, worker, concurrency, progress)
    summary = progress.summary()
    if rationalize:
        solved = {r["instance_id"] for r in journal.records if (r.get("reward") or 0) >= 1.0}
        hinted = [
            (inst, f"{RATIONALIZED}0") for inst in instances
            if inst.id not in solved and inst.answer and episode_id(inst, f"{RATIONALIZED}0") not in journal
        ]
        progress = Progress(total=len(hinted), desc="rationalize")
        await run_bounded(hinted, worker, concurrency, progress)
        summary["rationalized"] = progress.summary()
    rewards = [r["reward"] for r in journal.records if r.get("reward") is not None]
    return {
        "instances": len(instances),
        "synthesized": len(journal),
        "this_run": summary,
        "failed_this_run": summary["failed"],
        "mean_reward": round(sum(rewards) / len(rewards), 4) if rewards else None,
        "halt_reasons": _count(r.get("halt_reason") for r in journal.records),
        "solved_by_origin": _count(r.get("origin") for r in journal.records if (r.get("reward") or 0) >= 1.0),
    }


def _count(values) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[str(v)] = out.get(str(v), 0) + 1
    return out
