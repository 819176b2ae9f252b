"""``autoact finetune``: train the run's LoRA adapters, and optionally check them served."""

from __future__ import annotations

import argparse
import time

from autoact.finetune.config import add_training_flags, config_from_args
from autoact.finetune.records import AGENTS


def cmd_finetune(args: argparse.Namespace) -> int:
    from autoact.settings import settings_from_args
    from autoact.finetune.serve_check import check_prompts, print_answers, serve_check
    from autoact.finetune.train import adapter_names, finetune_run
    from autoact.modelhub import resolve_model

    settings = settings_from_args(args)
    config = config_from_args(args)
    agents = [a.strip() for a in args.agents.split(",") if a.strip()]
    names = adapter_names(agents, args.one_agent)
    model_path = resolve_model(settings.model, settings.home)
    start = time.perf_counter()
    manifests = finetune_run(settings.run_dir, model_path, config, agents=agents, one_agent=args.one_agent)
    print(f"[finetune] trained {sorted(manifests)} in {time.perf_counter() - start:.0f} s; "
          f"serve them with `autoact serve --run {settings.run_dir}`")
    if args.serve_check:
        adapters = {name: settings.run_dir / "adapters" / name for name in names}
        answers = serve_check(settings, model_path, adapters, check_prompts(settings.run_dir, names))
        print_answers(answers)
    return 0


def register(subparsers: argparse._SubParsersAction, add_common) -> None:
    parser = subparsers.add_parser(
        "finetune",
        help="train one LoRA adapter per sub-agent on RUN/data (loss on the targets only)",
        description="Train LoRA adapters on RUN/data/<agent>.jsonl and write them to RUN/adapters/<agent>/. "
        "Multi-GPU: python -m autoact.finetune.train under deepspeed or accelerate launch "
        "(see that module's help).",
    )
    add_common(parser)
    parser.add_argument("--agents", default=",".join(AGENTS), help="comma-separated adapters to train")
    parser.add_argument("--one-agent", action="store_true",
                        help="train one adapter, 'one-agent', on all three agents' data (ablation)")
    parser.add_argument("--serve-check", action="store_true",
                        help="afterwards serve the adapters with vLLM and ask each one prompt from its data")
    add_training_flags(parser)
    parser.set_defaults(func=cmd_finetune)
