"""The benchmark runner: every method on the same questions, concurrently, resumably.

``run_eval`` loads the benchmark once, picks the questions (at most ``limit`` per
level or grade group), finds or starts the model server with the adapters the
methods need, and runs each method's graph over the questions ``concurrency`` at a
time against the vLLM endpoint, with a progress bar. Every finished question is
appended at once to ``EVAL_DIR/<method>.jsonl`` (id, group, prediction, gold,
scores, tokens, model calls, latency, halt reason, trajectory; for Reflexion each
trial's actions too), so a killed run continues where it stopped; questions that
failed (server errors) are logged to ``EVAL_DIR/<method>.errors.jsonl`` and tried
again on the next run.
``EVAL_DIR/eval.json`` records the benchmark, data, model, tools and settings (a
directory holds one benchmark), and ``EVAL_DIR/summary.json`` the scores.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from langchain_core.messages import HumanMessage

from autoact.concurrency import Progress, run_bounded
from autoact.eval.aggregate import group_of, summarize
from autoact.eval.methods import Method, needed_adapters, resolve_methods
from autoact.eval.report import read_eval_dir
from autoact.graph.environment import Backend
from autoact.graph.registry import graph_kind
from autoact.io import atomic_write_text
from autoact.serving.endpoint import EndpointUnsuitable, model_endpoint
from autoact.settings import Settings
from autoact.synth.journal import Journal
from autoact.tools import Task, TaskInstance, load_task, tool_library
from autoact.usage import usage_totals

BENCHMARKS = ("hotpotqa", "scienceqa", "custom", "demo")
MANIFEST_FILE = "eval.json"
SUMMARY_FILE = "summary.json"
#: Manifest fields that must agree when a directory is resumed: results under
#: different questions, tools or models must not be mixed.
STABLE_FIELDS = ("benchmark", "data", "split", "tools", "model", "seed", "temperature", "options")
OPTION_KEYS = ("max_steps", "max_reflections", "trials", "temperature", "max_tokens", "max_context_tokens",
               "structured")


class EvalSetupError(ValueError):
    """An evaluation that cannot run as asked (named clearly for the user)."""


class AdapterNotServed(EvalSetupError, EndpointUnsuitable):
    """A method needs an adapter the server does not serve (or the run does not hold)."""


# ---- questions and tools -------------------------------------------------------------------
def load_benchmark(benchmark: str, data: Sequence[str | Path] | str | Path | None = None,
                   corpus: str | Path | None = None) -> Task:
    if benchmark not in BENCHMARKS:
        raise EvalSetupError(f"unknown benchmark {benchmark!r}; benchmarks are {', '.join(BENCHMARKS)}")
    if benchmark == "custom" and not data:
        raise EvalSetupError("the custom benchmark needs --data: a JSONL file of {question, answer} records")
    if isinstance(data, (list, tuple)) and len(data) == 1:
        data = data[0]
    return load_task(benchmark, data=data or None, corpus=corpus)


def select_instances(task: Task, limit: int | None = None, split: str | None = None) -> list[TaskInstance]:
    """The questions to run: those of ``split`` (when given), at most ``limit`` per
    group, in file order. Questions without a gold answer cannot be scored."""
    chosen = [i for i in task.instances if split is None or i.meta.get("split") == split]
    if split is not None and not chosen:
        raise EvalSetupError(f"no question of the {task.name} task is in split {split!r}")
    chosen = [i for i in chosen if i.has_gold]
    ids = [i.id for i in chosen]
    duplicates = sorted({x for x in ids if ids.count(x) > 1})
    if duplicates:
        raise EvalSetupError(f"question ids must be unique; repeated: {duplicates[:5]}")
    if limit is not None:
        if limit < 1:
            raise EvalSetupError("--limit must be at least 1")
        taken: dict[str, int] = {}
        kept = []
        for inst in chosen:
            g = group_of(inst.meta)
            if taken.get(g, 0) < limit:
                kept.append(inst)
                taken[g] = taken.get(g, 0) + 1
        chosen = kept
    if not chosen:
        raise EvalSetupError(f"no question with a gold answer to evaluate in the {task.name} data")
    return chosen


def resolve_tools(task: Task, run_dir: Path, tools: Sequence[str] | None = None) -> tuple[list[str], str]:
    """(tool names, where they come from): the ones given, else the run's selection
    (``RUN/tools.json``: the tools its adapters were trained with), else the task's."""
    library = tool_library(task)
    if tools:
        names, source = list(tools), "given"
    elif (Path(run_dir) / "tools.json").is_file():
        record = json.loads((Path(run_dir) / "tools.json").read_text())
        names, source = list(record.get("selected") or []), f"{Path(run_dir) / 'tools.json'}"
    else:
        names, source = list(task.default_tools), f"the {task.name} task's defaults"
    unknown = [n for n in names if n not in library]
    if unknown:
        raise EvalSetupError(f"tool(s) {unknown} (from {source}) are not in the library: {sorted(library)}")
    if not names:
        raise EvalSetupError(f"no tools (from {source})")
    return names, source


# ---- the model server ------------------------------------------------------------------------
def check_adapters(served: Sequence[str], methods: Sequence[Method], url: str, run_dir: Path) -> None:
    for method in methods:
        missing = [a for a in method.adapters if a not in served]
        if missing:
            name = missing[0]
            raise AdapterNotServed(
                f"method {method.name!r} needs the adapter {name!r}, which {url} does not serve "
                f"(it serves {sorted(served)}). Train it into {Path(run_dir) / 'adapters' / name} "
                f"and serve it (`autoact serve-load {name} {Path(run_dir) / 'adapters' / name}`), "
                "or leave the method out"
            )


def adapter_dir(run_dir: Path, name: str) -> Path:
    """Where a served adapter name lives in a run: ``RUN/adapters/<name>``, and for a
    later self-training round (``plan-r2``) ``RUN/rounds/r2/adapters/plan``."""
    agent, sep, round_tag = name.rpartition("-r")
    if sep and agent and round_tag.isdigit():
        return Path(run_dir) / "rounds" / f"r{round_tag}" / "adapters" / agent
    return Path(run_dir) / "adapters" / name


def adapter_paths(run_dir: Path, names: Sequence[str], methods: Sequence[Method]) -> dict[str, Path]:
    paths = {}
    for name in names:
        path = adapter_dir(run_dir, name)
        if not (path / "adapter_config.json").is_file():
            users = [m.name for m in methods if name in m.adapters]
            how = "`autoact finetune --one-agent`" if name == "one-agent" else "`autoact finetune`"
            raise AdapterNotServed(
                f"method(s) {users} need the adapter {name!r}, but {path} holds none: train it with {how} "
                f"for this run, or leave the method(s) out"
            )
        paths[name] = path
    return paths


def eval_endpoint(settings: Settings, methods: Sequence[Method], base_url: str | None = None,
                  serve: bool = True) -> contextlib.AbstractContextManager[str]:
    """An endpoint serving every adapter the methods need (``serving.endpoint.model_endpoint``:
    the one given or configured, else the recorded one if it serves them, else a server
    started with exactly those adapters)."""
    return model_endpoint(
        settings, base_url, serve,
        adapters=lambda: adapter_paths(settings.run_dir, needed_adapters(list(methods)), methods),
        check=lambda served, url: check_adapters(served, methods, url, settings.run_dir),
    )


# ---- one question ------------------------------------------------------------------------------------
def step_actions(step: dict[str, Any]) -> dict[str, Any]:
    """What tells whether a step was an error turn (``aggregate.turn_errors``)."""
    return {k: step[k] for k in ("action", "argument", "status") if k in step}


def question_record(method: str, task: Task, instance: TaskInstance, state: dict[str, Any], seconds: float) -> dict:
    """One line of ``<method>.jsonl``. The scores are recomputed from the prediction by the
    task's scorer for every method alike (no answer scores as an empty one)."""
    prediction = state.get("answer")
    scores = task.score("" if prediction is None else str(prediction), instance)
    calls, prompt, completion = usage_totals(state.get("usage") or {})
    record = {
        "id": instance.id,
        "method": method,
        "group": group_of(instance.meta),
        "question": instance.question,
        "prediction": prediction,
        "gold": instance.answer,
        "choices": instance.choices,
        "scores": scores,
        "reward": scores.get("reward"),
        "tokens": {"prompt": prompt, "completion": completion},
        "calls": calls,
        "latency_s": round(seconds, 3),
        "halt_reason": state.get("halt_reason"),
        "trajectory": list(state.get("trajectory") or []),
        "reflections": list(state.get("reflections") or []),
        "usage": state.get("usage") or {},
    }
    if state.get("plan"):
        record["plan"] = list(state["plan"])
    if state.get("trials"):
        # each trial's actions, without the observations, for the report's self-debugging figures
        record["trials"] = [
            {"answer": t.get("answer"), "reward": t.get("reward"), "halt_reason": t.get("halt_reason"),
             "steps": len(t.get("trajectory") or []), "actions": [step_actions(s) for s in t.get("trajectory") or []]}
            for t in state["trials"]
        ]
        record["notes"] = list(state.get("notes") or [])
    return record


def method_file(out_dir: Path, method: str) -> Path:
    return Path(out_dir) / f"{method}.jsonl"


async def evaluate_method(
    method: Method,
    task: Task,
    instances: Sequence[TaskInstance],
    graph: Any,
    context: dict[str, Any],
    out_dir: Path,
    concurrency: int,
    callbacks: list | None = None,
) -> dict[str, Any]:
    """Run ``graph`` on every question not yet in ``<method>.jsonl``; returns the
    progress summary of this run (done, failed, completion tokens, seconds, tokens/s)."""
    journal = Journal(method_file(out_dir, method.name))
    errors = Journal(Path(out_dir) / f"{method.name}.errors.jsonl", key="attempt")
    todo = [inst for inst in instances if inst.id not in journal]
    progress = Progress(total=len(todo), desc=f"eval {method.name}")
    config = {"callbacks": callbacks, "tags": [f"eval:{method.name}"]} if callbacks else {"tags": [f"eval:{method.name}"]}

    async def worker(instance: TaskInstance) -> dict[str, Any]:
        start = time.perf_counter()
        try:
            # the question's id travels with every run of its episode (tracing, callbacks)
            state = await graph.ainvoke(
                {"messages": [HumanMessage(instance.question)], "instance": instance.to_dict()},
                config={**config, "metadata": {"question_id": instance.id}},
                context=context,
            )
        except Exception as exc:  # recorded and retried on the next run; never fatal
            errors.append({
                "attempt": f"{instance.id}@{time.time():.3f}",
                "id": instance.id,
                "error": f"{type(exc).__name__}: {exc}",
            })
            return {"failed": True}
        record = question_record(method.name, task, instance, state, time.perf_counter() - start)
        journal.append(record)
        return {"kept": (record["reward"] or 0) >= 1.0, "tokens": record["tokens"]["completion"]}

    await run_bounded(todo, worker, concurrency, progress)
    return {**progress.summary(), "skipped_done": len(instances) - len(todo)}


# ---- the evaluation ----------------------------------------------------------------------------------
def method_context(method: Method, task: Task, tools: list[str], base_url: str,
                   options: dict[str, Any]) -> dict[str, Any]:
    """The graph context of a method: shared options, then the method's own settings."""
    values: dict[str, Any] = {"base_url": base_url, "task": task.name}
    if method.uses_tools:
        values["tools"] = list(tools)
    for key in (k for k in OPTION_KEYS if k != "trials"):  # trials: reflexion's max_trials, below
        if options.get(key) is not None:
            values[key] = options[key]
    values.update(method.context)
    if method.graph == "reflexion" and options.get("trials") is not None:
        values["max_trials"] = options["trials"]
    schema = graph_kind(method.graph).context
    try:
        return schema(**values).model_dump(exclude_unset=True)
    except Exception as exc:
        raise EvalSetupError(f"method {method.name}: invalid settings: {exc}") from exc


def _check_manifest(out_dir: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    path = Path(out_dir) / MANIFEST_FILE
    if not path.is_file():
        return {**manifest, "created": time.time()}
    old = json.loads(path.read_text())
    changed = [k for k in STABLE_FIELDS if old.get(k) != manifest.get(k)]
    if changed:
        diffs = "; ".join(f"{k}: {old.get(k)!r} before, {manifest.get(k)!r} now" for k in changed)
        raise EvalSetupError(
            f"{out_dir} holds an evaluation with other settings ({diffs}); use another --out directory"
        )
    merged = {**old, **manifest}
    merged["methods"] = list(dict.fromkeys([*old.get("methods", []), *manifest["methods"]]))
    return merged


def write_summary(out_dir: Path, benchmark: str) -> dict[str, Any]:
    """Scores of every method file in the directory, written to ``summary.json``."""
    data = read_eval_dir(out_dir)
    summary = {
        "benchmark": benchmark,
        "metrics": list(data["metrics"]),
        "methods": {m: summarize(records, data["metrics"]) for m, records in data["records"].items()},
    }
    atomic_write_text(Path(out_dir) / SUMMARY_FILE, json.dumps(summary, indent=2))
    return summary


@dataclass
class EvalPlan:
    """Everything an evaluation needs before it talks to a server."""

    settings: Settings
    benchmark: str
    task: Task
    instances: list[TaskInstance]
    methods: list[Method]
    tools: list[str]
    out_dir: Path
    manifest: dict[str, Any]
    options: dict[str, Any] = field(default_factory=dict)
    backend: Any = None


def plan_eval(
    settings: Settings,
    benchmark: str,
    methods: Sequence[str],
    out_dir: str | Path,
    *,
    data: Sequence[str | Path] | str | Path | None = None,
    corpus: str | Path | None = None,
    split: str | None = None,
    limit: int | None = None,
    tools: Sequence[str] | None = None,
    **options: Any,
) -> EvalPlan:
    """Load the benchmark, pick questions and tools, check the output directory.
    ``options``: max_steps, max_reflections, trials, temperature, max_tokens,
    max_context_tokens, structured (False: no vLLM structured outputs)."""
    unknown = set(options) - set(OPTION_KEYS)
    if unknown:
        raise EvalSetupError(f"unknown option(s) {sorted(unknown)}; options are {', '.join(OPTION_KEYS)}")
    chosen = resolve_methods(list(methods))
    out_dir = Path(out_dir)
    task = load_benchmark(benchmark, data, corpus)
    if benchmark == "demo" and split is None:
        split = "test"
    instances = select_instances(task, limit, split)
    tool_names, tools_source = resolve_tools(task, settings.run_dir, tools)
    data_files = [str(Path(d).resolve()) for d in ([data] if isinstance(data, (str, Path)) else list(data or []))]
    temperature = options.get("temperature")
    manifest = _check_manifest(out_dir, {
        "benchmark": benchmark,
        "data": data_files or "default",
        "split": split,
        "limit_per_group": limit,
        "tools": tool_names,
        "tools_source": tools_source,
        "model": settings.model,
        "run_dir": str(Path(settings.run_dir).resolve()),
        "seed": settings.sampling.seed,
        "temperature": temperature if temperature is not None else settings.sampling.temperature,
        "sampling": {
            "temperature": temperature if temperature is not None else settings.sampling.temperature,
            "top_p": settings.sampling.top_p,
            "top_k": settings.sampling.top_k if settings.sampling.top_k > 0 else None,
            "max_tokens": options.get("max_tokens") or settings.sampling.max_tokens,
        },
        "methods": [m.name for m in chosen],
        "questions": len(instances),
        "options": {k: v for k, v in options.items() if v is not None},
        "updated": time.time(),
    })
    # The graphs get the task already loaded (with its corpus and index), whatever files it came from.
    backend = Backend(load_task=lambda name, data=None, corpus=None: task)
    return EvalPlan(settings, benchmark, task, instances, chosen, tool_names, out_dir, manifest,
                    {k: v for k, v in options.items() if v is not None}, backend)


async def run_methods(plan: EvalPlan, base_url: str, concurrency: int, callbacks: list | None = None,
                      methods: Sequence[Method] | None = None, models: dict | None = None) -> dict[str, Any]:
    """Each method in turn (its questions concurrently) on one event loop; returns
    each method's progress summary and context. ``models`` injects chat models per
    role into every graph (tests); by default the graphs reach the server."""
    plan.out_dir.mkdir(parents=True, exist_ok=True)
    manifest = {**plan.manifest, "base_url": base_url, "concurrency": concurrency}
    atomic_write_text(plan.out_dir / MANIFEST_FILE, json.dumps(manifest, indent=2))
    runs: dict[str, Any] = {}
    for method in methods or plan.methods:
        context = method_context(method, plan.task, plan.tools, base_url, plan.options)
        graph = graph_kind(method.graph).build(models, backend=plan.backend, settings=plan.settings, name=method.name)
        runs[method.name] = await evaluate_method(
            method, plan.task, plan.instances, graph, context, plan.out_dir, concurrency, callbacks
        )
        runs[method.name]["context"] = context
    return runs


def run_eval(
    settings: Settings,
    benchmark: str,
    methods: Sequence[str],
    out_dir: str | Path,
    *,
    data: Sequence[str | Path] | str | Path | None = None,
    corpus: str | Path | None = None,
    split: str | None = None,
    limit: int | None = None,
    concurrency: int | None = None,
    base_url: str | None = None,
    serve: bool = True,
    tools: Sequence[str] | None = None,
    callbacks: list | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Evaluate ``methods`` on ``benchmark`` into ``out_dir``; returns the summary.

    ``settings`` gives the model, the run directory (``RUN/adapters``, ``RUN/tools.json``)
    and the sampling (its seed). ``base_url`` attaches to a running server; otherwise
    one is found or started (see :func:`eval_endpoint`). ``limit`` is per level/group.
    For the demo task the held-out ``test`` split is the default. ``options``:
    max_steps, max_reflections, trials (Reflexion), temperature, max_tokens.
    """
    plan = plan_eval(settings, benchmark, methods, out_dir, data=data, corpus=corpus, split=split,
                     limit=limit, tools=tools, **options)
    with eval_endpoint(settings, plan.methods, base_url, serve) as url:
        runs = asyncio.run(run_methods(plan, url, concurrency or settings.concurrency, callbacks))
    summary = write_summary(plan.out_dir, benchmark)
    failed = {m: r["failed"] for m, r in runs.items() if r.get("failed")}
    return {"eval_dir": str(plan.out_dir), "questions": len(plan.instances), "tools": plan.tools,
            "runs": runs, "failed": failed, **summary}
