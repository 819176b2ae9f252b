"""The ``autoact`` command line.

Each subsystem registers its own commands (``register(subparsers)`` in its
``commands`` module), so this file only wires them together and holds the
commands of the foundation: ``model``, ``serve`` and ``demo``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path

from autoact.settings import Settings, load_settings

#: Modules that add subcommands; a missing one is skipped, so the CLI still works
#: while a subsystem is being built.
COMMAND_MODULES = (
    "autoact.tools.commands",
    "autoact.synth.commands",
    "autoact.finetune.commands",
    "autoact.graph.commands",
    "autoact.eval.commands",
    "autoact.serving.commands",
)


def settings_from_args(args: argparse.Namespace, **extra: object) -> Settings:
    overrides: dict[str, object] = {"model": getattr(args, "model", None), **extra}
    if getattr(args, "run", None):
        overrides["run_dir"] = Path(args.run)
    if getattr(args, "home", None):
        overrides["home"] = Path(args.home)
    return load_settings(getattr(args, "config", None), **overrides)


def add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="YAML or TOML settings file")
    parser.add_argument("--model", help="'embedded', a local HF model folder or a hub id")
    parser.add_argument("--run", help="run directory")
    parser.add_argument("--home", help="cache directory (default $AUTOACT_HOME or ~/.cache/autoact)")


# ---- model -------------------------------------------------------------------
def cmd_model_prepare(args: argparse.Namespace) -> int:
    from autoact.modelhub import prepare_embedded_model, resolve_model

    settings = settings_from_args(args)
    start = time.perf_counter()
    if settings.model == "embedded":
        path = prepare_embedded_model(settings.home, force=args.force)
    else:
        path = resolve_model(settings.model, settings.home)
    print(f"model ready: {path} ({time.perf_counter() - start:.1f} s)")
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
    from autoact.models import write_endpoint
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
    extra = {}
    if args.base_url:
        extra["server"] = {"base_url": args.base_url}
    settings = settings_from_args(args, **extra)
    adapters = parse_adapter_specs(args.adapter)
    if not adapters and not args.no_run_adapters:
        from autoact.serving.vllm_server import run_adapters

        adapters = run_adapters(settings.run_dir)
    start = time.perf_counter()
    server = start_server(settings, adapters, lora=True if args.lora else None)
    served = sorted([*server.expected_models()])
    print(f"serving {served} at {server.base_url} (ready in {time.perf_counter() - start:.1f} s)")
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
    from autoact.models import endpoint_file

    settings = settings_from_args(args)
    path = endpoint_file(settings)
    if not path.is_file():
        print("no recorded server")
        return 0
    info = json.loads(path.read_text())
    pid = info.get("pid")
    if pid:
        try:
            os.killpg(pid, signal.SIGTERM)
            print(f"stopped the server process group {pid}")
        except ProcessLookupError:
            print(f"server {pid} was not running")
    path.unlink()
    return 0


def cmd_serve_load(args: argparse.Namespace) -> int:
    from autoact.models import endpoint_url
    from autoact.serving.vllm_server import VLLMServer

    settings = settings_from_args(args)
    server = VLLMServer(settings, settings.model, base_url=endpoint_url(settings))
    server.load_adapter(args.name, Path(args.path).resolve())
    print(f"adapter {args.name} loaded into {server.base_url}")
    return 0


# ---- demo (the main job) ---------------------------------------------------------
def cmd_demo(args: argparse.Namespace) -> int:
    from autoact.pipeline import PipelineConfig, run_pipeline

    settings = settings_from_args(args)
    if args.run is None:
        settings = settings.model_copy(update={"run_dir": Path("runs/demo")})
    config = PipelineConfig(
        instances=args.instances, samples=args.samples, rationalize=not args.no_rationalize,
        min_reward=args.min_reward, max_steps=args.max_steps, epochs=args.epochs, eval_limit=args.eval_limit,
    )
    summary = run_pipeline(settings, config)
    print(json.dumps(summary, indent=2, default=str))
    print(f"[demo] report: {summary['report'].get('markdown') or summary['report']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="autoact", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    model = sub.add_parser("model", help="the base model")
    model_sub = model.add_subparsers(dest="model_command", required=True)
    prepare = model_sub.add_parser("prepare", help="convert the embedded GGUF model into a HF folder, once")
    add_common(prepare)
    prepare.add_argument("--force", action="store_true", help="rebuild even if prepared")
    prepare.set_defaults(func=cmd_model_prepare)

    serve = sub.add_parser("serve", help="start the vLLM server with the run's adapters, or attach to one")
    add_common(serve)
    serve.add_argument("--adapter", action="append", metavar="NAME=PATH", help="an adapter to serve (repeatable)")
    serve.add_argument("--base-url", help="attach to this existing endpoint (…/v1) instead of starting one")
    serve.add_argument("--lora", action="store_true", help="enable LoRA even without adapters (for hot-loading)")
    serve.add_argument("--no-run-adapters", action="store_true", help="ignore RUN/adapters")
    serve.add_argument("--detach", action="store_true", help="leave the server running and return")
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
        "demo", help="the main job: the whole pipeline on the embedded model and the demo task",
        description="prepare -> serve -> synthesize -> fine-tune -> serve adapters -> eval autoact vs react -> report",
    )
    add_common(demo)
    demo.add_argument("--instances", type=int, default=16, help="grounded self-instructed questions")
    demo.add_argument("--samples", type=int, default=1, help="trajectories per question before rationalization")
    demo.add_argument("--no-rationalize", action="store_true", help="no hinted retries of unsolved questions")
    demo.add_argument("--min-reward", type=float, default=1.0, help="the filter's reward threshold")
    demo.add_argument("--max-steps", type=int, default=4, help="steps per episode")
    demo.add_argument("--epochs", type=int, default=3, help="fine-tuning epochs")
    demo.add_argument("--eval-limit", type=int, help="held-out questions per level (default: all)")
    demo.set_defaults(func=cmd_demo)

    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        module.register(sub, add_common)
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
