"""Does the method learn? react, no-finetune, autoact after round 1 and after round R.

    python benchmarks/self_improvement.py [--model embedded] [--rounds 2] [--seeds 0,1,2]
        [--samples N] [--benchmarks demo,hotpotqa] [--hotpotqa-limit 10] [--out runs/bench-self-improvement]

For each benchmark the whole learning pipeline runs once (``autoact learn``: grounded
self-instruct that never writes from a paragraph supporting an evaluation question,
tool selection, trajectories, filter, three adapters, then R-1 self-training rounds),
and every method is evaluated on the same questions with the same model, once per
sampling seed (the paper's inference sampling: temperature 0.5, top-p 0.75, top-k 40,
so that seeds differ):

- demo: the 20 held-out questions of the built-in task;
- hotpotqa: the shared easy and medium files, ``--hotpotqa-limit`` questions per level.

It prints one row per benchmark and method (the All score, mean ± std over seeds) and
the ratio autoact ÷ react (of the means), then where each method lost its answers
(retrieval or extraction), and writes ``table.md`` / ``table.json``
under ``--out``. Runs resume: run it again with the same ``--out`` to continue;
``--report-only`` rebuilds the table of finished runs without starting a model.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from autoact.app.pipeline import PipelineConfig, run_pipeline
from autoact.eval.aggregate import OUTCOMES, outcome_cells
from autoact.settings import load_settings

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"


def run_benchmark(name: str, args: argparse.Namespace) -> dict:
    settings = load_settings(model=args.model)
    sampling = settings.sampling.model_copy(update={"top_p": 0.75, "top_k": 40})
    learn = settings.learn.model_copy(update={
        "rounds": args.rounds, "eval_seeds": args.seeds, "samples": args.samples or settings.learn.samples,
        "eval_limit": args.hotpotqa_limit if name == "hotpotqa" else None,
    })
    data = None
    if name == "hotpotqa":
        data = [str(SHARED / "hotpotqa" / "easy.jsonl"), str(SHARED / "hotpotqa" / "medium.jsonl")]
        missing = [d for d in data if not Path(d).is_file()]
        if missing:
            raise SystemExit(f"shared HotpotQA data not found: {missing}")
    run_dir = Path(args.out) / name
    settings = settings.model_copy(update={"run_dir": run_dir, "sampling": sampling})
    start = time.perf_counter()
    if args.report_only:
        summary = report_again(run_dir)
    else:
        summary = run_pipeline(settings, PipelineConfig(task=name, data=data, learn=learn, eval_temperature=0.5))
    report = json.loads((run_dir / "report" / "report.json").read_text())
    metric = report["metrics"][0]
    rows = {m: report["scores"][metric][m].get("All") for m in report["methods"]}
    return {"benchmark": name, "metric": metric, "rows": rows, "outcomes": report.get("answer_outcomes") or {},
            "rounds": summary.get("rounds"), "samples": learn.samples,
            "synthesis": summary.get("synthesis"),
            "seconds": summary.get("seconds") if args.report_only else round(time.perf_counter() - start, 1),
            "report": str(run_dir / "report" / "report.md")}


def report_again(run_dir: Path) -> dict:
    """The finished run's summary, its report rewritten from the per-question records
    (so that figures added to reports since reach an old run); nothing is run."""
    from autoact.eval.report import write_report

    summary_file = run_dir / "learn-summary.json"
    eval_dirs = sorted((run_dir / "eval").glob("seed*"))
    if not summary_file.is_file() or not eval_dirs:
        raise SystemExit(f"{run_dir}: no finished run to report (run without --report-only first)")
    write_report(eval_dirs, run_dir / "report")
    return json.loads(summary_file.read_text())


def ratio(rows: dict, method: str) -> float | None:
    react, other = rows.get("react"), rows.get(method)
    if not react or not other or not react["mean"]:
        return None
    return other["mean"] / react["mean"]


def markdown(results: list[dict], args: argparse.Namespace) -> str:
    samples = ", ".join(sorted({str(r.get("samples")) for r in results})) or "–"
    lines = [
        f"Model: {args.model}; seeds {', '.join(map(str, args.seeds))} (temperature 0.5, top-p 0.75, top-k 40); "
        f"{args.rounds} round(s); {samples} trajectories per self-instructed question. "
        "Cells: All (×100), mean ± std over seeds.",
        "",
        "| benchmark | metric | react | no-finetune | autoact (round 1) | autoact (round R) | autoact ÷ react | round R ÷ react |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        rows = r["rows"]
        last = max((m for m in rows if m.startswith("autoact-r")), default=None,
                   key=lambda m: int(m.split("-r")[1]))

        def cell(method: str | None) -> str:
            value = rows.get(method) if method else None
            if not value:
                return "–"
            sd = f" ± {value['std']:.1f}" if value.get("std") is not None else ""
            return f"{value['mean']:.1f}{sd}"

        def times(method: str | None) -> str:
            x = ratio(rows, method) if method else None
            return f"{x:.2f}×" if x is not None else "–"

        lines.append(f"| {r['benchmark']} | {r['metric']} | {cell('react')} | {cell('no-finetune')} | "
                     f"{cell('autoact')} | {cell(last)} | {times('autoact')} | {times(last)} |")
    lines += outcome_lines(results)
    return "\n".join(lines) + "\n"


def outcome_lines(results: list[dict]) -> list[str]:
    """Where each method's answers were lost, summed over seeds: retrieval (never read
    the gold answer) or extraction (read it, gave something else)."""
    if not any(r.get("outcomes") for r in results):
        return []
    lines = ["", "Where answers were lost (episodes summed over seeds; see `autoact.eval.aggregate.answer_outcome`):", "",
             "| benchmark | method | " + " | ".join(OUTCOMES) + " |", "|---|---|" + "---:|" * len(OUTCOMES)]
    for r in results:
        for method, counts in (r.get("outcomes") or {}).items():
            lines.append(f"| {r['benchmark']} | {method} | {' | '.join(outcome_cells(counts))} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--samples", type=int, default=None,
                        help="trajectories per question in round 1 (default: [learn] samples)")
    parser.add_argument("--benchmarks", default="demo,hotpotqa")
    parser.add_argument("--hotpotqa-limit", type=int, default=10, help="HotpotQA questions per level")
    parser.add_argument("--out", default="runs/bench-self-improvement")
    parser.add_argument("--report-only", action="store_true",
                        help="run nothing: rewrite each finished run's report from its records and print the table")
    args = parser.parse_args(argv)
    args.seeds = [int(s) for s in args.seeds.split(",")]
    results = []
    for name in [b.strip() for b in args.benchmarks.split(",") if b.strip()]:
        result = run_benchmark(name, args)
        results.append(result)
        print(json.dumps(result, default=str), flush=True)
    table = markdown(results, args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text(table)
    (out / "table.json").write_text(json.dumps(results, indent=2, default=str))
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
