"""What each prompt change contributes to the meta-agent's solve rate.

    python benchmarks/synthesis_formats.py [--model embedded] [--limit 45] [--base-url URL]

The meta-agent (the base model in the single-agent ReAct graph, as trajectory
synthesis runs it) solves the demo task's 45 training questions with Retrieve,
Lookup and Search, up to 4 steps, once per configuration; each configuration adds
one change to the one before:

1. chat: the earlier format (history in one user message, one generic example);
2. transcript: one text the model continues on /v1/completions, generic one-hop
   and multi-hop examples;
3. task examples: the worked examples built from the task's seed questions;
4. structured outputs: the action line and the Reflect verdict constrained by vLLM;
5. reflection examples: the reflection prompt shows the worked examples with their
   reflections (with readable verdicts, the 0.5B model judged most right answers
   wrong, then answered ``Finish[wrong]``);
6. repeat guard: after an action that repeats an earlier one, the next step must be
   Finish;
7. sampling: two more samples per question at temperature 0.9 (the paper's); the
   greedy episodes are those of step 6 (same configuration, same seed).

It prints, per configuration, the questions solved at full reward (exact answer)
greedily and by any sample, the episodes solved, the mean reward, the halt reasons
and the time, and writes the table as Markdown to ``--out`` (default
``runs/bench-synthesis-formats/table.md``) with the trajectories of every run beside
it. Same model, same questions, one server, in one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

from autoact.settings import load_settings
from autoact.synth.journal import Journal
from autoact.synth.synthesis import SynthesisConfig, run_synthesis
from autoact.synth.trajectories import TRAJECTORIES_FILE

STEPS = [
    ("chat (earlier format)", dict(prompt_format="chat", structured=False, example_source="generic")),
    ("+ transcript, generic one-hop and multi-hop examples", dict(prompt_format="transcript")),
    ("+ examples from the task's seeds", dict(example_source="task")),
    ("+ structured outputs", dict(structured=True)),
    ("+ reflections shown in the reflection prompt's examples", dict(reflection_examples=True)),
    ("+ repeat guard (Finish after a repeated action)", dict(repeat_guard=True)),
    ("+ 2 samples at temperature 0.9", dict(samples=3)),
]


def summarize(records: list[dict]) -> dict:
    by_question: dict[str, list[dict]] = {}
    for r in records:
        by_question.setdefault(r["instance_id"], []).append(r)
    full = lambda r: (r.get("reward") or 0) >= 1.0  # noqa: E731
    greedy = sum(1 for rs in by_question.values() if any(full(r) and r["sample"] == 0 for r in rs))
    rewards = [r.get("reward") or 0.0 for r in records]
    return {
        "questions": len(by_question),
        "solved_greedy": greedy,
        "solved_any": sum(1 for rs in by_question.values() if any(full(r) for r in rs)),
        "episodes": len(records),
        "episodes_solved": sum(1 for r in records if full(r)),
        "mean_reward": round(sum(rewards) / len(rewards), 3) if rewards else 0.0,
        "halts": dict(Counter(r.get("halt_reason") for r in records)),
    }


async def run(args: argparse.Namespace) -> list[dict]:
    from autoact.serving.endpoint import model_endpoint

    settings = load_settings(model=args.model)
    out = Path(args.out)
    rows = []
    config = SynthesisConfig(task="demo", instances="task", tools=["Retrieve", "Lookup", "Search"],
                             max_steps=args.max_steps, limit=args.limit, concurrency=args.concurrency,
                             samples=1, prompt_format="chat", structured=False, example_source="generic",
                             repeat_guard=False, reflection_examples=False)
    with model_endpoint(settings, args.base_url, serve=True) as base_url:
        for n, (label, change) in enumerate(STEPS, 1):
            config = replace(config, **change)
            run_dir = out / f"step{n}"
            if set(change) == {"samples"} and not (run_dir / TRAJECTORIES_FILE).exists():
                # only the number of samples changes: the greedy episodes are the previous step's
                run_dir.mkdir(parents=True, exist_ok=True)
                shutil.copy(out / f"step{n - 1}" / TRAJECTORIES_FILE, run_dir / TRAJECTORIES_FILE)
            step_settings = settings.model_copy(update={"run_dir": run_dir})
            start = time.perf_counter()
            await run_synthesis(step_settings, config, base_url, stages=("tools", "trajectories"))
            seconds = time.perf_counter() - start
            row = {"step": n, "change": label, **summarize(Journal(run_dir / TRAJECTORIES_FILE).records),
                   "seconds": round(seconds, 1)}
            saved = run_dir / "row.json"
            if saved.is_file() and json.loads(saved.read_text())["episodes"] == row["episodes"]:
                row["seconds"] = json.loads(saved.read_text())["seconds"]  # a resumed step keeps its own time
            saved.write_text(json.dumps(row))
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def markdown(rows: list[dict], model: str) -> str:
    lines = [
        f"Model: {model}; demo training questions; Retrieve, Lookup, Search; at most {rows[0].get('max_steps', 4)} steps.",
        "",
        "| change (cumulative) | solved greedy | solved by any sample | episodes solved | mean reward | time |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['change']} | {r['solved_greedy']}/{r['questions']} | {r['solved_any']}/{r['questions']} | "
            f"{r['episodes_solved']}/{r['episodes']} | {r['mean_reward']:.3f} | {r['seconds']:.0f} s |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded", help="model setting (default: the embedded default)")
    parser.add_argument("--limit", type=int, default=None, help="first N training questions (default: all 45)")
    parser.add_argument("--max-steps", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--base-url", help="an endpoint serving the model as 'base' (default: start one)")
    parser.add_argument("--out", default="runs/bench-synthesis-formats")
    args = parser.parse_args(argv)
    rows = asyncio.run(run(args))
    for r in rows:
        r["max_steps"] = args.max_steps
    table = markdown(rows, args.model)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "table.md").write_text(table)
    (Path(args.out) / "table.json").write_text(json.dumps(rows, indent=2))
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
