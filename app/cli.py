"""The ``autoact`` command line.

Each stage package registers its own commands (``register(subparsers, add_common)``
in its ``commands`` module), so this file only wires them together and holds the
commands that span stages: ``model``, ``serve*``, ``learn`` and ``demo``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import signal
import sys
import time
from pathlib import Path

from autoact.settings import Settings, add_common, settings_from_args

#: Modules that add subcommands (each has ``register(subparsers, add_common)``).
COMMAND_MODULES = (
    "autoact.tools.commands",
    "autoact.synth.commands",
    "autoact.finetune.commands",
    "autoact.app.ask_commands",
    "autoact.eval.commands",
    "autoact.app.chat_commands",
)


# ---- model -------------------------------------------------------------------
def cmd_model_prepare(args: argparse.Namespace) -> int:
    from autoact.modelhub import EMBEDDED_MODELS, embedded_key, prepare_embedded_model, resolve_model

    settings = settings_from_args(args)
    keys = list(EMBEDDED_MODELS) if args.all else [args.name or embedded_key(settings.model)]
    for key in keys:
        start = time.perf_counter()
        if key is None:  # a local folder or a hub id
            path = resolve_model(settings.model, settings.home)
        else:
            path = prepare_embedded_model(settings.home, key, force=args.force)
        print(f"model ready: {path} ({time.perf_counter() - start:.1f} s)")
    return 0


def cmd_model_list(args: argparse.Namespace) -> int:
    from autoact.modelhub import (
        DEFAULT_EMBEDDED, EMBEDDED_MODELS, ModelPreparationError, embedded_model_dir, verify_model_folder,
    )

    settings = settings_from_args(args)
    for key, spec in EMBEDDED_MODELS.items():
        folder = embedded_model_dir(settings.home, key)
        try:
            verify_model_folder(folder)
            state = "prepared"
        except ModelPreparationError:
            state = "not prepared"
        default = " (default)" if key == DEFAULT_EMBEDDED else ""
        print(f"embedded:{key}{default}: {spec.display_name}\n  licence: {spec.licence}\n"
              f"  origin: {spec.origin}\n  {state}: {folder}")
    return 0


# ---- serve -------------------------------------------------------------------
def parse_adapter_specs(specs: list[str]) -> dict[str, Path]:
    adapters: dict[str, Path] = {}
    for spec in specs or []:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise SystemExit(f"--adapter takes NAME=PATH, got {spec!r}")
        adapters[name] = Path(path)
    return adapters


def start_server(settings: Settings, adapters: dict[str, Path] | None = None, lora: bool | None = None):
    """Start (or attach to) the server for these settings; records the endpoint."""
    from autoact.serving.client import write_endpoint
    from autoact.modelhub import resolve_model
    from autoact.serving.vllm_server import VLLMServer, run_adapters

    if adapters is None:
        adapters = run_adapters(settings.run_dir)
    model_path = resolve_model(settings.model, settings.home)
    server = VLLMServer(
        settings, model_path, adapters=dict(adapters), base_url=settings.server.base_url, enable_lora=lora
    )
    server.start()
    write_endpoint(settings, server.info())
    return server


def cmd_serve(args: argparse.Namespace) -> int:
    from autoact.serving.endpoint import API_KEY_ENV, use_api_key

    server_overrides = {k: v for k, v in {"base_url": args.base_url, "host": args.host}.items() if v}
    settings = settings_from_args(args, **({"server": server_overrides} if server_overrides else {}))
    api_key = use_api_key(args.api_key)
    adapters = parse_adapter_specs(args.adapter)
    if not adapters and not args.no_run_adapters:
        from autoact.serving.vllm_server import run_adapters

        adapters = run_adapters(settings.run_dir)
    start = time.perf_counter()
    server = start_server(settings, adapters, lora=True if args.lora else None)
    served = sorted([*server.expected_models()])
    print(f"serving {served} at {server.base_url} (ready in {time.perf_counter() - start:.1f} s)")
    if api_key:
        print(f"the server requires the API key: clients need {API_KEY_ENV} set to it")
    if server.process is None:
        print("attached to an existing endpoint; nothing was started")
        return 0
    print(f"log: {server.log_path}  pid: {server.process.pid}")
    if args.detach:
        print("detached; stop it with `autoact serve-stop`")
        return 0
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    try:
        while not stop["now"] and server.process and server.process.poll() is None:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        print("server stopped")
    return 0


def cmd_serve_stop(args: argparse.Namespace) -> int:
    """Stop the recorded server, only once its pid is shown to still be that server."""
    from autoact.serving.client import endpoint_file
    from autoact.serving.vllm_server import NotOurProcess, stop_recorded_server

    settings = settings_from_args(args)
    path = endpoint_file(settings)
    if not path.is_file():
        print("no recorded server")
        return 0
    info = json.loads(path.read_text())
    try:
        print(stop_recorded_server(info, signal.SIGTERM))
    except NotOurProcess as exc:
        if exc.stale:
            path.unlink(missing_ok=True)
            print(f"autoact serve-stop: refused: {exc}; its stale record {path} was removed", file=sys.stderr)
        else:
            print(f"autoact serve-stop: refused: {exc} (record: {path})", file=sys.stderr)
        return 1
    path.unlink(missing_ok=True)
    return 0


def cmd_serve_load(args: argparse.Namespace) -> int:
    from autoact.serving.client import endpoint_url
    from autoact.serving.vllm_server import VLLMServer

    settings = settings_from_args(args)
    server = VLLMServer(settings, settings.model, base_url=endpoint_url(settings))
    server.load_adapter(args.name, Path(args.path).resolve())
    print(f"adapter {args.name} loaded into {server.base_url}")
    return 0


# ---- learn / demo (the main job) -------------------------------------------------
LEARN_FLAGS = (
    # (flag, LearnSettings field, type, help)
    ("--instances", "instances", int, "grounded self-instructed questions"),
    ("--samples", "samples", int, "trajectories per question: greedy, then sampled"),
    ("--max-steps", "max_steps", int, "steps per synthesized episode"),
    ("--eval-max-steps", "eval_max_steps", int, "steps per evaluated episode (default: --max-steps)"),
    ("--min-reward", "min_reward", float, "the filter's reward threshold (1 = full reward, the method's)"),
    ("--rounds", "rounds", int, "self-training rounds (1 = AutoAct's single training)"),
    ("--epochs", "epochs", float, "fine-tuning epochs"),
    ("--learning-rate", "learning_rate", float, "LoRA learning rate (default: the settings', 1e-3; the paper's is 1e-4)"),
    ("--lora-layers", "lora_layers", int, "LoRA in the last N layers only (0: every layer)"),
    ("--eval-limit", "eval_limit", int, "evaluation questions per level (default: all)"),
)


def learn_settings(settings: Settings, args: argparse.Namespace):
    """``Settings.learn`` with the flags given on top."""
    update = {field: getattr(args, flag[2:].replace("-", "_")) for flag, field, _, _ in LEARN_FLAGS
              if getattr(args, flag[2:].replace("-", "_"), None) is not None}
    if getattr(args, "rationalize", False):
        update["rationalize"] = True
    if getattr(args, "all_layers", False):
        update["lora_layers"] = 0
    if getattr(args, "eval_seeds", None):
        update["eval_seeds"] = [int(x) for x in args.eval_seeds.split(",")]
    return settings.learn.model_copy(update=update)


def pipeline_config(args: argparse.Namespace, settings: Settings, task: str):
    """The learning run the ``learn`` / ``demo`` flags describe."""
    from autoact.app.pipeline import PipelineConfig

    code = getattr(args, "action_space", "text") == "code"
    return PipelineConfig(
        task=task, data=getattr(args, "data", None), corpus=getattr(args, "corpus", None),
        learn=learn_settings(settings, args), eval_temperature=args.eval_temperature,
        instances="task" if args.task_questions else "self-instruct", train_data=args.train_data,
        action_space="code" if code else "text",
        methods=("react", "codeact", "codeact-ft") if code else PipelineConfig.methods,
    )


def cmd_learn(args: argparse.Namespace, task: str | None = None) -> int:
    from autoact.app.pipeline import run_pipeline

    settings = settings_from_args(args)
    task = task or args.task
    if args.run is None:
        settings = settings.model_copy(update={"run_dir": Path("runs") / task})
    config = pipeline_config(args, settings, task)
    summary = run_pipeline(settings, config)
    print(json.dumps({k: summary[k] for k in ("run_dir", "synthesis", "rounds", "scores", "seconds") if k in summary},
                     indent=2, default=str))
    print(f"[learn] report: {summary['report'].get('markdown') or summary['report']}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    if args.run is None:
        args.run = "runs/demo"
    return cmd_learn(args, task="demo")


def add_learn_flags(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("sizes (default: the settings' [learn] section)")
    for flag, _, kind, help_text in LEARN_FLAGS:
        g.add_argument(flag, type=kind, help=help_text)
    g.add_argument("--all-layers", action="store_true", help="LoRA in every layer (default: the last 8)")
    g.add_argument("--rationalize", action="store_true",
                   help="STaR-style hinted retries of unsolved questions (an ablation, not AutoAct)")
    g.add_argument("--eval-seeds", help="comma-separated sampling seeds, one evaluation each (default 0)")
    g.add_argument("--task-questions", action="store_true",
                   help="solve the task's own training split instead of self-instructed questions")
    g.add_argument("--train-data", help="with --task-questions: a separate file of training questions "
                   "(for data without a training split, such as HotpotQA files)")
    g.add_argument("--eval-temperature", type=float, help="evaluation sampling temperature (default: the settings')")
    g.add_argument("--action-space", choices=("text", "code"), default="text",
                   help="text: plan/tool/reflect agents with Retrieve[...] actions (AutoAct); code: one CodeAct "
                        "agent acting in Python blocks, evaluated as codeact-ft beside react and codeact")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="autoact", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    model = sub.add_parser("model", help="the base model")
    model_sub = model.add_subparsers(dest="model_command", required=True)
    prepare = model_sub.add_parser(
        "prepare", help="convert an embedded GGUF model into a HF folder, once (default: the settings' model)"
    )
    add_common(prepare)
    which = prepare.add_mutually_exclusive_group()
    which.add_argument("--name", metavar="KEY", help="the embedded model to prepare (see `autoact model list`)")
    which.add_argument("--all", action="store_true", help="prepare every embedded model")
    prepare.add_argument("--force", action="store_true", help="rebuild even if prepared")
    prepare.set_defaults(func=cmd_model_prepare)
    listing = model_sub.add_parser("list", help="the embedded models, their licences and whether they are prepared")
    add_common(listing)
    listing.set_defaults(func=cmd_model_list)

    serve = sub.add_parser("serve", help="start the vLLM server with the run's adapters, or attach to one")
    add_common(serve)
    serve.add_argument("--adapter", action="append", metavar="NAME=PATH", help="an adapter to serve (repeatable)")
    serve.add_argument("--base-url", help="attach to this existing endpoint (…/v1) instead of starting one")
    serve.add_argument("--lora", action="store_true", help="enable LoRA even without adapters (for hot-loading)")
    serve.add_argument("--no-run-adapters", action="store_true", help="ignore RUN/adapters")
    serve.add_argument("--detach", action="store_true", help="leave the server running and return")
    serve.add_argument("--host", help="address to bind (default: the settings', 127.0.0.1: this machine only; "
                       "any other address is reachable from other machines: use --api-key)")
    serve.add_argument("--api-key", help="require this key (Authorization: Bearer KEY) on /v1; default "
                       "$AUTOACT_API_KEY, which is better: a command line is visible to every user of the machine")
    serve.set_defaults(func=cmd_serve)

    stop = sub.add_parser("serve-stop", help="stop the server that `autoact serve --detach` started")
    add_common(stop)
    stop.set_defaults(func=cmd_serve_stop)

    load = sub.add_parser("serve-load", help="hot-load an adapter into the running server")
    add_common(load)
    load.add_argument("name")
    load.add_argument("path")
    load.set_defaults(func=cmd_serve_load)

    demo = sub.add_parser(
        "demo", help="the main job: the whole method on the embedded model and the demo task",
        description="prepare -> serve -> synthesize -> fine-tune -> [rounds] -> serve adapters -> "
                    "evaluate react, no-finetune and autoact -> report",
    )
    add_common(demo)
    add_learn_flags(demo)
    demo.set_defaults(func=cmd_demo)

    learn = sub.add_parser(
        "learn", help="the whole method on any task: synthesize, fine-tune, [rounds], evaluate, report",
        description="The main job's pipeline for any task, e.g. "
                    "`autoact learn --task hotpotqa --data easy.jsonl medium.jsonl --rounds 2 --run runs/h1`",
    )
    add_common(learn)
    learn.add_argument("--task", default="demo", help="demo, hotpotqa, scienceqa or custom")
    learn.add_argument("--data", nargs="+", help="task data files (evaluated; synthesis never uses their "
                       "supporting paragraphs)")
    learn.add_argument("--corpus", help="corpus file (JSONL of title/text)")
    add_learn_flags(learn)
    learn.set_defaults(func=cmd_learn)

    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(sub, add_common)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a clear one-line error for users; -v shows the trace
        if args.verbose:
            raise
        print(f"autoact: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
