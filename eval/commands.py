"""``autoact eval`` (methods on a benchmark) and ``autoact report`` (tables and plots)."""

from __future__ import annotations

import argparse
import sys
from typing import Any, Callable

from autoact.eval.aggregate import ALL, METRIC_LABELS
from autoact.eval.methods import METHODS
from autoact.eval.runner import BENCHMARKS


def _positive(value: str) -> int:
    n = int(value)
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {n}")
    return n


def print_summary(result: dict[str, Any], out=sys.stdout) -> None:
    metrics = result["metrics"]
    for method, summary in result["methods"].items():
        parts = []
        for metric in metrics:
            label = METRIC_LABELS.get(metric, metric)
            groups = " ".join(f"{g} {v[metric]:.2f}" for g, v in summary["groups"].items())
            parts.append(f"{label}: {groups} | {ALL} {summary['all'][metric]:.2f}")
        cost = summary["cost"]
        print(
            f"{method:>15} (n={summary['n']}): " + "; ".join(parts)
            + f"; {cost['calls_per_q']:.1f} calls, {cost['completion_tokens_per_q']:.0f} completion tokens,"
            f" {cost['latency_s_per_q']:.1f} s per question",
            file=out,
        )


def cmd_eval(args: argparse.Namespace) -> int:
    from autoact.settings import settings_from_args
    from autoact.eval.report import write_report
    from autoact.eval.runner import run_eval

    settings = settings_from_args(args)
    if args.seed is not None:
        settings = settings.model_copy(update={"sampling": settings.sampling.model_copy(update={"seed": args.seed})})
    tools = [t.strip() for t in args.tools.split(",") if t.strip()] if args.tools else None
    result = run_eval(
        settings,
        args.benchmark,
        args.method,
        args.out,
        data=args.data,
        corpus=args.corpus,
        split=args.split,
        limit=args.limit,
        concurrency=args.concurrency,
        base_url=args.base_url,
        serve=not args.no_serve,
        tools=tools,
        max_steps=args.max_steps,
        max_reflections=args.max_reflections,
        trials=args.trials,
        temperature=args.temperature,
        max_tokens=args.max_tokens,
    )
    print(f"{args.benchmark}: {result['questions']} questions, tools {', '.join(result['tools'])}")
    print_summary(result)
    print(f"records and summary: {result['eval_dir']}")
    if args.report:
        paths = write_report([args.out], args.report)
        print(f"report: {paths['markdown']} and {paths['html']}")
    if result["failed"]:
        failed = ", ".join(f"{m}: {n}" for m, n in result["failed"].items())
        print(f"autoact: {failed} question(s) failed (see {args.out}/<method>.errors.jsonl); "
              "run the same command again to retry them", file=sys.stderr)
        return 1
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from autoact.eval.report import write_report

    paths = write_report(args.eval_dirs, args.out)
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0


def register(subparsers: Any, add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    p = subparsers.add_parser(
        "eval",
        help="evaluate methods (autoact, baselines, ablations) on a benchmark",
        description="Run each method on the same questions against the model server, concurrently; "
        "per-question records go to OUT/<method>.jsonl, and a rerun continues where the last one stopped.",
    )
    add_common(p)
    p.add_argument("--benchmark", required=True, choices=BENCHMARKS)
    p.add_argument("--data", nargs="+", metavar="PATH",
                   help="data files or folders (default for hotpotqa/scienceqa: ../shared/data)")
    p.add_argument("--corpus", help="corpus file for Retrieve / Lookup / Search (default: the benchmark's)")
    p.add_argument("--split", help="only questions of this split (demo default: test)")
    p.add_argument("--method", nargs="+", required=True, metavar="M",
                   help=f"methods: {', '.join(METHODS)}, or all")
    p.add_argument("--out", required=True, metavar="EVAL_DIR", help="directory for the records (resumable)")
    p.add_argument("--limit", type=_positive, help="at most N questions per level / grade group")
    p.add_argument("--concurrency", type=_positive, help="questions in flight at once (default: the settings')")
    p.add_argument("--base-url", help="model server endpoint (…/v1) to use")
    p.add_argument("--no-serve", action="store_true", help="fail instead of starting a model server")
    p.add_argument("--tools", help="comma-separated tools (default: RUN/tools.json, else the benchmark's)")
    p.add_argument("--max-steps", type=_positive, help="most tool and Finish steps per episode (default 8)")
    p.add_argument("--max-reflections", type=int, help="retries after Reflect[wrong] (default 1)")
    p.add_argument("--trials", type=_positive, help="Reflexion: most trials per question (default 2)")
    p.add_argument("--temperature", type=float, help="sampling temperature (default: the settings', 0)")
    p.add_argument("--max-tokens", type=_positive, help="tokens per model call (default: the settings')")
    p.add_argument("--seed", type=int, help="sampling seed (one evaluation directory per seed)")
    p.add_argument("--report", metavar="REPORT_DIR", help="also write the report of OUT there")
    p.set_defaults(func=cmd_eval)

    r = subparsers.add_parser(
        "report",
        help="Markdown + HTML report (tables, cost, plots) from evaluation directories",
        description="Several directories are several seeds of one benchmark: cells become mean ± std.",
    )
    r.add_argument("eval_dirs", nargs="+", metavar="EVAL_DIR")
    r.add_argument("--out", required=True, metavar="REPORT_DIR")
    r.set_defaults(func=cmd_report)
