"""The whole method on one task: the main job (``autoact demo``) and ``autoact learn``.

    prepare model -> serve the base -> synthesize (grounded self-instruct, tool
    selection checked on the seeds, trajectories, filter, differentiate) ->
    fine-tune plan / tool / reflect (round 1 = AutoAct)
    [-> rounds 2..R: the unsolved questions re-solved by the last round's agents,
        filter the union, retrain]
    -> serve the adapters -> evaluate react, no-finetune and autoact (and
    autoact-rR) on the held-out questions, one directory per seed -> report

With ``action_space="code"`` the meta-agent acts in Python blocks (CodeAct): the
trajectories train one ``codeact`` adapter instead of three, evaluated as
``codeact-ft`` beside the zero-shot ``codeact`` (one round only).

Synthesis never draws data from the paragraphs that support an evaluation
question (see ``Task.evaluation_titles``). Every stage is resumable: run it again
with the same ``--run`` and it continues. The server is stopped while adapters
train: on two cores training and serving cannot share the CPU.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from autoact.eval.aggregate import ALL
from autoact.eval.methods import needed_adapters, resolve_methods, round_adapter
from autoact.eval.report import write_report
from autoact.eval.runner import adapter_paths, run_eval
from autoact.finetune.config import FinetuneConfig
from autoact.finetune.records import read_jsonl
from autoact.finetune.train import plot_run_losses, train_adapter
from autoact.graph.group import build_group_graph
from autoact.modelhub import resolve_model
from autoact.prompts.codeact import AGENT as CODEACT_AGENT
from autoact.serving.vllm_server import VLLMServer, stop_on_sigterm
from autoact.settings import AGENTS, LearnSettings, Settings
from autoact.synth.journal import Journal
from autoact.synth.rounds import cut_round, record_round, resolve_unsolved, round_dir, solved_ids
from autoact.synth.self_instruct import SelfInstructConfig
from autoact.synth.synthesis import SynthesisConfig, instances_for, run_synthesis, selected_tools, task_for
from autoact.synth.trajectories import TRAJECTORIES_FILE
from autoact.tools import tool_library

CODE_AGENTS = (CODEACT_AGENT,)


@dataclass
class PipelineConfig:
    """One learning run: the task and what to compare; the sizes are ``learn``
    (``Settings.learn``: config file ``[learn]`` section, ``AUTOACT_LEARN__…``, flags)."""

    task: str = "demo"
    data: list[str] | None = None  # task data files (hotpotqa, scienceqa, custom)
    corpus: str | None = None
    learn: LearnSettings = field(default_factory=LearnSettings)
    methods: tuple[str, ...] = ("react", "no-finetune", "autoact")
    eval_temperature: float | None = None  # None: the settings' sampling (greedy by default)
    prompt_format: str = "transcript"
    instances: str = "self-instruct"  # or "task": the task's training questions (--task-questions)
    train_data: str | None = None  # with instances="task": a separate file of training questions
    action_space: str = "text"  # text: plan/tool/reflect agents (AutoAct); code: one CodeAct agent

    def __post_init__(self) -> None:
        if self.action_space == "code" and self.learn.rounds > 1:
            raise ValueError("self-training rounds re-solve with the group-planning agents: text actions only "
                             "(use rounds = 1 with action_space='code')")

    @property
    def agents(self) -> tuple[str, ...]:
        """The adapters this run trains."""
        return CODE_AGENTS if self.action_space == "code" else AGENTS


def _stage(name: str, t0: float) -> None:
    print(f"[learn] {name} ({time.perf_counter() - t0:.0f} s)", flush=True)


def _synthesis_config(config: PipelineConfig, settings: Settings):
    learn = config.learn
    return SynthesisConfig(
        task=config.task,
        data=config.data,
        corpus=config.corpus,
        instances=config.instances,
        train_data=config.train_data,
        self_instruct=SelfInstructConfig(n=learn.instances, k=1, grounded=True),
        samples=learn.samples,
        sample_temperature=learn.sample_temperature,
        greedy_first=learn.greedy_first,
        rationalize=learn.rationalize,
        min_reward=learn.min_reward,
        max_steps=learn.max_steps,
        max_kept=learn.max_kept,
        concurrency=settings.concurrency,
        prompt_format=config.prompt_format,
        action_space=config.action_space,
    )


def finetune_config(learn: LearnSettings):
    """The LoRA training settings of a learning run."""
    return FinetuneConfig(
        epochs=learn.epochs, learning_rate=learn.learning_rate, lr_scheduler=learn.lr_scheduler,
        warmup_ratio=learn.warmup_ratio, lora_r=learn.lora_r, lora_alpha=learn.lora_alpha,
        lora_dropout=learn.lora_dropout, target_modules=learn.lora_targets, lora_layers=learn.lora_layers or None,
        batch_size=learn.batch_size,
    )


def _train(run_dir: Path, data_dir: Path, adapters_dir: Path, model_path: str, config: PipelineConfig,
           counts: dict[str, int]) -> list[str]:
    """Train one adapter per sub-agent that has records; returns the agents trained."""
    settings = finetune_config(config.learn)
    trained = []
    for agent in config.agents:
        if not counts.get(agent):
            continue
        path = data_dir / f"{agent}.jsonl"
        records = read_jsonl(path, require_agent=agent)
        print(f"[learn] training {agent}: {len(records)} records from {path}", flush=True)
        manifest = train_adapter(records, model_path, adapters_dir / agent, settings, name=agent, sources=[path])
        if manifest is not None:
            r = manifest["result"]
            print(f"[learn] {agent}: {r['global_step']} steps, final loss {r['final_loss']}, "
                  f"{r['tokens_per_s']} tokens/s, {r['train_seconds']:.0f} s", flush=True)
            trained.append(agent)
    plot_run_losses(run_dir)
    return trained


def _done(adapters_dir: Path, counts: dict[str, int], agents: tuple[str, ...] = AGENTS) -> bool:
    """Whether every agent with records already has its adapter (a resumed run)."""
    needed = [a for a in agents if counts.get(a)]
    return bool(needed) and all((adapters_dir / a / "adapter_config.json").is_file() for a in needed)


def run_pipeline(settings: Settings, config: PipelineConfig) -> dict[str, Any]:
    """Run the whole method (see the module docstring); returns the summary also
    written to ``RUN/learn-summary.json``. A SIGTERM stops the servers it started."""
    with stop_on_sigterm():
        return _run_pipeline(settings, config)


def _run_pipeline(settings: Settings, config: PipelineConfig) -> dict[str, Any]:
    t0 = time.perf_counter()
    run_dir = Path(settings.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    model_path = resolve_model(settings.model, settings.home)
    _stage(f"model ready: {model_path}", t0)
    summary: dict[str, Any] = {
        "run_dir": str(run_dir), "model": settings.model,
        "config": {**{k: v for k, v in asdict(config).items() if k != "learn"}, "learn": config.learn.model_dump()},
    }
    synth = _synthesis_config(config, settings)
    task = task_for(synth)

    # ---- round 1: AutoAct's synthesis on the base model (no LoRA: every role is the base)
    with VLLMServer(settings, model_path, base_url=settings.server.base_url) as server:
        _stage(f"base model served at {server.base_url}", t0)
        reports = asyncio.run(run_synthesis(settings, synth, server.base_url))
    counts = reports.get("differentiate") or {}
    kept = (reports.get("filter") or {}).get("kept", 0)
    instances = (reports.get("self-instruct") or {}).get("instances")
    summary["synthesis"] = {
        "instances": instances,
        "rejected_by_reason": (reports.get("self-instruct") or {}).get("rejected_by_reason"),
        "tools": (reports.get("tools") or {}).get("selected"),
        "tools_why": (reports.get("tools") or {}).get("why"),
        "trajectories": (reports.get("trajectories") or {}).get("synthesized"),
        "kept": kept,
        "records": counts,
    }
    _stage(f"synthesis: {json.dumps(summary['synthesis'])}", t0)
    tools = [tool_library(task)[n] for n in selected_tools(run_dir, task)]

    rounds_done: list[int] = []
    agents = config.agents
    if all(counts.get(a) for a in agents):
        if not _done(run_dir / "adapters", counts, agents):
            _train(run_dir, run_dir / "data", run_dir / "adapters", model_path, config, counts)
        rounds_done.append(1)
        record_round(run_dir, {"round": 1, "instances": instances, "kept": kept, "records": counts,
                               "instances_solved": kept, "newly_solved": kept,
                               "adapters": list(agents)})
        _stage(f"round 1: adapters {', '.join(agents)} trained", t0)
    else:
        missing = [a for a in agents if not counts.get(a)]
        print(f"[learn] no training records for {missing} ({kept} trajectories kept): nothing to fine-tune, so "
              "the fine-tuned methods cannot be evaluated; the report compares the base model's methods only.",
              flush=True)

    # ---- rounds 2..R: re-solve the unsolved questions with the last round's agents, retrain on the union
    learn = config.learn
    for r in range(2, learn.rounds + 1):
        if not rounds_done:
            break
        previous = r - 1
        adapters = {round_adapter(a, previous): round_dir(run_dir, previous) / "adapters" / a for a in AGENTS}
        out = round_dir(run_dir, r)
        with VLLMServer(settings, model_path, adapters=adapters, base_url=settings.server.base_url) as server:
            _stage(f"round {r}: agents of round {previous} served at {server.base_url}", t0)
            resolved = asyncio.run(_resolve_round(settings, synth, task, server.base_url, r, config,
                                                  [t.name for t in tools]))
        cut = cut_round(run_dir, r, task.description, tools, config.prompt_format, learn.max_kept, learn.min_reward)
        solved = solved_ids(Journal(run_dir / TRAJECTORIES_FILE).records, learn.min_reward)
        entry = {"round": r, "instances": instances, "instances_solved": len(solved),
                 "newly_solved": resolved["newly_solved"], "episodes": resolved["episodes"],
                 "kept": cut["filter"]["kept"], "kept_by_origin": cut["kept_by_origin"], "records": cut["records"]}
        if resolved["newly_solved"] == 0:
            print(f"[learn] round {r}: no new question solved; its data equal round {previous}'s, "
                  "trained again all the same (a like-for-like row)", flush=True)
        if not _done(out / "adapters", cut["records"]):
            _train(run_dir, out / "data", out / "adapters", model_path, config, cut["records"])
        entry["adapters"] = [round_adapter(a, r) for a in AGENTS]
        record_round(run_dir, entry)
        rounds_done.append(r)
        _stage(f"round {r}: {json.dumps({k: entry[k] for k in ('instances_solved', 'newly_solved', 'kept')})}", t0)
    summary["rounds"] = rounds_done

    # ---- evaluation: the same questions for every method, one directory per seed
    # a method that needs an adapter this run did not train is left out (said above)
    trained = set(agents) if rounds_done else set()
    methods = [m for m in config.methods if set(resolve_methods([m])[0].adapters) <= trained]
    if rounds_done and rounds_done[-1] >= 2:
        methods.append(f"autoact-r{rounds_done[-1]}")
    eval_dirs = []
    adapters = adapter_paths(run_dir, needed_adapters(resolve_methods(methods)), resolve_methods(methods))
    with VLLMServer(settings, model_path, adapters=adapters, base_url=settings.server.base_url) as server:
        _stage(f"serving {['base', *adapters]} at {server.base_url}", t0)
        for seed in learn.eval_seeds:
            sampling = settings.sampling.model_copy(update={"seed": seed})
            eval_settings = settings.model_copy(update={"sampling": sampling})
            eval_dir = run_dir / "eval" / f"seed{seed}"
            options = {"max_steps": learn.eval_max_steps or learn.max_steps}
            if config.eval_temperature is not None:
                options["temperature"] = config.eval_temperature
            result = run_eval(eval_settings, config.task, methods, eval_dir, data=config.data, corpus=config.corpus,
                              limit=learn.eval_limit, base_url=server.base_url, serve=False, **options)
            eval_dirs.append(eval_dir)
            _stage(f"evaluation seed {seed}: {result.get('questions')} questions, methods {methods}", t0)
    summary["eval"] = {"dirs": [str(d) for d in eval_dirs], "methods": methods}
    paths = write_report(eval_dirs, run_dir / "report")
    summary["report"] = {k: str(v) for k, v in paths.items()}
    summary["scores"] = _headline(run_dir / "report" / "report.json")
    _stage(f"report written: {paths.get('markdown')}", t0)
    summary["seconds"] = round(time.perf_counter() - t0, 1)
    (run_dir / "learn-summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary


async def _resolve_round(settings: Settings, synth: Any, task: Any, base_url: str, round_number: int,
                         config: PipelineConfig, tool_names: list[str]) -> dict[str, Any]:
    previous = round_number - 1
    context = {
        "base_url": base_url, "task": config.task, "data": config.data, "corpus": config.corpus,
        "tools": tool_names, "max_steps": config.learn.max_steps, "reflect": True, "mode": "iterative",
        "prompt_format": config.prompt_format,
        **{f"{a}_model": round_adapter(a, previous) for a in AGENTS},
    }
    instances = instances_for(task, synth, Path(settings.run_dir))
    return await resolve_unsolved(
        instances, build_group_graph(settings=settings), context, Path(settings.run_dir), round_number,
        config.learn.round_samples, config.learn.sample_temperature, settings.concurrency, tool_names,
        config.learn.min_reward,
    )


def _headline(report_json: Path) -> dict[str, Any]:
    """The All column of the first metric per method (mean over seeds), for the summary."""
    if not report_json.is_file():
        return {}
    report = json.loads(report_json.read_text())
    metric = report["metrics"][0]
    return {m: round((row.get(ALL) or {}).get("mean", 0.0), 2) for m, row in report["scores"][metric].items()}
