"""``autoact synthesize [STAGE]``: the self-planning data stages from the command line."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Callable

from autoact.synth.synthesis import STAGES


def cmd_synthesize(args: argparse.Namespace) -> int:
    from autoact.settings import settings_from_args
    from autoact.serving.endpoint import model_endpoint
    from autoact.synth.synthesis import SynthesisConfig, synthesize
    from autoact.synth.self_instruct import SelfInstructConfig

    settings = settings_from_args(args)
    if args.concurrency:
        settings = settings.model_copy(update={"concurrency": args.concurrency})
    config = SynthesisConfig(
        task=args.task,
        data=args.data,
        corpus=args.corpus,
        instances="task" if args.task_questions else "self-instruct",
        train_data=args.train_data,
        sample_temperature=args.sample_temperature,
        prompt_format=args.prompt_format,
        structured=not args.no_structured,
        example_source=args.examples,
        tool_trials=not args.no_tool_trials,
        self_instruct=SelfInstructConfig(
            n=args.n, k=args.k, grounded=args.grounded, max_fruitless_rounds=args.max_fruitless_rounds
        ),
        max_steps=args.max_steps,
        samples=args.samples,
        limit=args.limit,
        rationalize=args.rationalize,
        min_reward=args.min_reward,
        tools=[t.strip() for t in args.tools.split(",") if t.strip()] if args.tools else None,
        max_kept=args.max_kept,
        concurrency=settings.concurrency,
        action_space=args.action_space,
    )
    stages = STAGES if args.stage == "all" else (args.stage,)
    with model_endpoint(settings, args.base_url, serve=not args.no_serve) as base_url:
        reports = synthesize(settings, config, base_url, stages)
    print(json.dumps(reports, indent=2, default=str))
    data_dir = Path(settings.run_dir) / "data"
    if data_dir.is_dir():
        print(f"training files: {', '.join(str(p) for p in sorted(data_dir.glob('*.jsonl')))}")
    return 0


def register(subparsers: Any, add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    from autoact.synth.self_instruct import SelfInstructConfig  # its defaults; deferred like the commands' imports

    p = subparsers.add_parser(
        "synthesize",
        help="self-instruct, tool selection, trajectory synthesis, filter and differentiate",
        description="Make the run's training data from a few seeds. Every stage is resumable.",
    )
    add_common(p)
    p.add_argument("stage", nargs="?", default="all", choices=("all", *STAGES), help="one stage, or all in order")
    p.add_argument("--task", default="demo", help="demo, hotpotqa, scienceqa or custom")
    p.add_argument("--data", help="task data file (for hotpotqa, scienceqa, custom)")
    p.add_argument("--corpus", help="corpus file (JSONL of title/text)")
    p.add_argument("--n", type=int, default=40, help="instances to self-instruct")
    p.add_argument("--k", type=int, default=3, help="instances asked for per round")
    p.add_argument("--grounded", action="store_true", help="ground self-instruct in corpus paragraphs")
    p.add_argument("--task-questions", action="store_true",
                   help="solve the task's own training questions instead of self-instructed ones")
    p.add_argument("--train-data", help="with --task-questions: a separate file of training questions "
                   "(for data without a training split)")
    p.add_argument("--max-fruitless-rounds", type=int, default=SelfInstructConfig.max_fruitless_rounds,
                   help="stop self-instruct after this many rounds in a row accept nothing (%(default)s)")
    p.add_argument("--samples", type=int, default=1,
                   help="trajectories per instance: the first greedy, the rest sampled at --sample-temperature")
    p.add_argument("--sample-temperature", type=float, default=0.9, help="temperature of the extra samples (0.9)")
    p.add_argument("--prompt-format", choices=("transcript", "chat"), default="transcript",
                   help="the meta-agent's and the trained agents' prompt format (default transcript)")
    p.add_argument("--action-space", choices=("text", "code"), default="text",
                   help="text: Retrieve[...] actions, split into plan/tool/reflect records (AutoAct); "
                        "code: Python blocks run in the sandbox (CodeAct), records for one 'codeact' agent")
    p.add_argument("--no-structured", action="store_true",
                   help="do not constrain action names, verdicts and choices with vLLM structured outputs")
    p.add_argument("--examples", choices=("task", "generic"), default="task",
                   help="worked examples in the meta-agent's prompt: built from the task's seeds, or generic")
    p.add_argument("--no-tool-trials", action="store_true",
                   help="take the meta-agent's tool choice without trying it on the seeds")
    p.add_argument("--rationalize", action="store_true",
                   help="retry unsolved instances with the answer as a hint (STaR rationalization); "
                        "kept only if the filter accepts them, trained without the hint")
    p.add_argument("--min-reward", type=float, default=1.0,
                   help="the filter keeps trajectories with at least this reward (default 1: full reward)")
    p.add_argument("--limit", type=int, help="solve only the first N instances")
    p.add_argument("--tools", help="comma-separated tool names instead of the meta-agent's choice")
    p.add_argument("--max-steps", type=int, default=6, help="steps per episode")
    p.add_argument("--max-kept", type=int, default=200, help="cap on kept trajectories")
    p.add_argument("--concurrency", type=int, help="episodes in flight at once (default: settings)")
    p.add_argument("--base-url", help="use this endpoint (…/v1)")
    p.add_argument("--no-serve", action="store_true", help="fail instead of starting a server when none answers")
    p.set_defaults(func=cmd_synthesize)
