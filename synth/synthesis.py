"""The whole self-planning data stage: ``autoact synthesize``.

    instances (self-instruct, or the task's own training questions)
      -> tool selection -> trajectories -> filter -> differentiate

The meta-agent acts with text actions (``Retrieve[...]``, the ReAct graph; the
trajectories are split into plan, tool and reflect records) or, with
``action_space="code"``, with Python blocks (the CodeAct graph; one ``codeact``
agent's records).

Every stage writes into the run directory as it goes and skips what is already
there, so a killed run continues where it stopped. ``RUN/manifest.json`` records
the model, the settings, the seeds, the counts of every stage and the hashes of the
files written.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from autoact.graph.codeact import build_codeact_graph
from autoact.graph.react import build_react_graph
from autoact.io import atomic_write_jsonl, atomic_write_text
from autoact.modelhub import file_sha256
from autoact.serving.client import chat_model
from autoact.settings import Settings
from autoact.synth.differentiate import ACTION_SPACES, differentiate
from autoact.synth.filter import filter_trajectories
from autoact.synth.journal import Journal
from autoact.synth.self_instruct import INSTANCES_FILE, SelfInstruct, SelfInstructConfig, load_instances
from autoact.synth.tool_selection import TOOLS_FILE, select_tools
from autoact.synth.trajectories import TRAJECTORIES_FILE, synthesize_trajectories
from autoact.tools import Task, TaskInstance, load_task, tool_library

log = logging.getLogger(__name__)

STAGES = ("self-instruct", "tools", "trajectories", "filter", "differentiate")
KEPT_FILE = "kept.jsonl"
MANIFEST_FILE = "manifest.json"


@dataclass
class SynthesisConfig:
    task: str = "demo"
    data: str | None = None
    corpus: str | None = None
    instances: str = "self-instruct"  # or "task": the task's own training questions
    train_data: str | None = None  # with instances="task": a separate file of training questions
    self_instruct: SelfInstructConfig = field(default_factory=SelfInstructConfig)
    max_steps: int = 6
    max_reflections: int = 1
    max_kept: int | None = 200
    concurrency: int = 8
    samples: int = 1  # trajectories per instance (sample 0 greedy, the rest at temperature)
    sample_temperature: float = 0.9  # the paper synthesizes at 0.9
    greedy_first: bool = True  # sample 0 greedy (False: every sample at sample_temperature, as the paper)
    tools: list[str] | None = None  # a fixed tool set instead of the meta-agent's choice
    limit: int | None = None  # solve only the first N instances
    rationalize: bool = False  # STaR: retry unsolved instances with the answer as a hint (not AutoAct: an ablation)
    min_reward: float = 1.0  # the filter's threshold (the method keeps full reward only)
    prompt_format: str = "transcript"  # transcript or chat: the meta-agent's and the trained agents' prompts
    structured: bool = True  # vLLM structured outputs for action names, verdicts, choices
    tool_trials: bool = True  # try the meta-agent's tool choice on the seeds against the task's defaults
    example_source: str = "task"  # worked examples in the meta-agent's prompt: from the seeds, or generic
    repeat_guard: bool = True  # after a repeated action the next step must be Finish
    reflection_examples: bool = True  # the reflection prompt's examples show their reflections
    action_space: str = "text"  # text: Retrieve[...] actions (ReAct graph); code: Python blocks (CodeAct graph)

    def __post_init__(self) -> None:
        if self.action_space not in ACTION_SPACES:
            raise ValueError(f"unknown action space {self.action_space!r}; use {' or '.join(ACTION_SPACES)}")
        if self.action_space == "code" and self.rationalize:
            raise ValueError("hinted retries (rationalize) are for text actions only; CodeAct trajectories are "
                             "zero-shot")
        if self.action_space == "code" and self.prompt_format != "transcript":
            raise ValueError("CodeAct prompts are transcripts: use prompt_format='transcript' with action_space='code'")


def task_for(config: SynthesisConfig) -> Task:
    return load_task(config.task, config.data, config.corpus)


class SplitError(ValueError):
    """Training questions asked for where the data has no training split."""


def training_questions(task: Task, config: SynthesisConfig) -> list[TaskInstance]:
    """The task's own training questions (``--task-questions``): its ``train`` split,
    or every question of a separate ``--train-data`` file. Data without a training
    split is refused: its questions are the evaluation questions (HotpotQA files
    carry no split), and training on them would score the test set on itself."""
    if config.train_data:
        train = load_task(config.task, config.train_data, config.corpus)
        chosen = [i for i in train.instances if i.meta.get("split") in (None, "train")]
        evaluation = {i.id for i in task.evaluation_questions()}
        chosen = [i for i in chosen if i.id not in evaluation]
    else:
        chosen = task.split("train")
        if not chosen:
            raise SplitError(
                f"--task-questions: the {task.name} data has no training split (no question is marked "
                "split=train), so its questions are the evaluation questions; give a separate file of training "
                "questions with --train-data, or self-instruct instead"
            )
    return [i for i in chosen if i.has_gold]


def instances_for(task: Task, config: SynthesisConfig, run_dir: Path) -> list[TaskInstance]:
    if config.instances == "task":
        return training_questions(task, config)
    return load_instances(run_dir)


def update_manifest(run_dir: Path, settings: Settings, config: SynthesisConfig, task: Task, stage: str, report: Any) -> dict:
    path = Path(run_dir) / MANIFEST_FILE
    manifest = json.loads(path.read_text()) if path.is_file() else {"created": time.time(), "stages": {}}
    manifest.update({
        "model": settings.model,
        "settings": json.loads(settings.model_dump_json()),
        "synthesis": asdict(config),
        "task": {"name": task.name, "description": task.description, "corpus_paragraphs": len(task.corpus)},
        "seeds": [s.to_dict() for s in task.seeds],
        "updated": time.time(),
    })
    manifest["stages"][stage] = report
    files = [INSTANCES_FILE, TOOLS_FILE, TRAJECTORIES_FILE, KEPT_FILE, "data/plan.jsonl", "data/tool.jsonl",
             "data/reflect.jsonl", "data/codeact.jsonl"]
    manifest["files"] = {name: file_sha256(Path(run_dir) / name) for name in files if (Path(run_dir) / name).is_file()}
    atomic_write_text(path, json.dumps(manifest, indent=2))
    return manifest


async def run_synthesis(
    settings: Settings,
    config: SynthesisConfig,
    base_url: str,
    stages: tuple[str, ...] = STAGES,
    graph: Any = None,
) -> dict[str, Any]:
    """Run the chosen stages in order; returns the report of each stage."""
    run_dir = Path(settings.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    task = task_for(config)
    reports: dict[str, Any] = {}

    if "self-instruct" in stages and config.instances == "self-instruct":
        meta = chat_model("meta", settings, base_url, **config.self_instruct.sampling)
        stage = SelfInstruct(task, meta, run_dir, config.self_instruct, seed=settings.seed)
        reports["self-instruct"] = await stage.run(config.concurrency)
        update_manifest(run_dir, settings, config, task, "self-instruct", reports["self-instruct"])

    code = config.action_space == "code"
    if graph is None and ("tools" in stages or "trajectories" in stages):
        if code:
            graph = build_codeact_graph(settings=settings)
        else:
            graph = build_react_graph(settings=settings)

    def meta_context(tools: list[str]) -> dict[str, Any]:
        if code:  # CodeAct does not reflect, and its examples are its own
            return {"base_url": base_url, "task": config.task, "data": config.data, "corpus": config.corpus,
                    "tools": tools, "max_steps": config.max_steps, "temperature": 0.0}
        return {
            "base_url": base_url,
            "task": config.task,
            "data": config.data,
            "corpus": config.corpus,
            "tools": tools,
            "max_steps": config.max_steps,
            "reflect": True,
            "max_reflections": config.max_reflections,
            "temperature": 0.0,
            "prompt_format": config.prompt_format,
            "structured": config.structured,
            "example_source": config.example_source,
            "repeat_guard": config.repeat_guard,
            "reflection_examples": config.reflection_examples,
        }

    if "tools" in stages:
        meta = chat_model("meta", settings, base_url, temperature=0.0, max_tokens=48, stop=["\n\n"])
        trial = seed_trial(task, graph, meta_context, config.concurrency) if config.tool_trials else None
        reports["tools"] = await select_tools(task, meta, run_dir, seed=settings.seed, fixed=config.tools, trial=trial)
        update_manifest(run_dir, settings, config, task, "tools", reports["tools"])

    selected = selected_tools(run_dir, task)
    if "trajectories" in stages:
        instances = instances_for(task, config, run_dir)[: config.limit]
        if not instances:
            made = reports.get("self-instruct")
            if made is not None:
                raise RuntimeError(
                    f"self-instruct accepted no question in {made['rounds']} rounds (rejected: "
                    f"{made.get('rejected_by_reason')}); the model may be too small to write valid items, "
                    "see RUN/self_instruct_rounds.jsonl")
            raise RuntimeError(f"no instances to solve in {run_dir}: run the self-instruct stage first")
        context = meta_context(selected)
        reports["trajectories"] = await synthesize_trajectories(
            instances, graph, context, run_dir, config.concurrency, config.samples, config.sample_temperature,
            config.rationalize, config.greedy_first,
        )
        update_manifest(run_dir, settings, config, task, "trajectories", reports["trajectories"])

    if "filter" in stages:
        records = Journal(run_dir / TRAJECTORIES_FILE).records
        kept, report = filter_trajectories(records, config.max_kept, config.min_reward)
        atomic_write_jsonl(run_dir / KEPT_FILE, kept)
        reports["filter"] = report
        log.info("filter: kept %d of %d trajectories", report["kept"], report["total"])
        update_manifest(run_dir, settings, config, task, "filter", report)

    if "differentiate" in stages:
        kept = Journal(run_dir / KEPT_FILE).records if (run_dir / KEPT_FILE).is_file() else []
        library = tool_library(task)
        tools = [library[name] for name in selected if name in library]
        reports["differentiate"] = differentiate(
            kept, task.description, tools, run_dir / "data", prompt_format=config.prompt_format,
            action_space=config.action_space,
        )
        update_manifest(run_dir, settings, config, task, "differentiate", reports["differentiate"])
    return reports


def seed_trial(task: Task, graph: Any, meta_context: Any, concurrency: int):
    """A tool-selection trial: the meta-agent solves the task's seed questions
    (greedy, no reflection) with a given tool set. Its prompt shows the generic
    worked examples, not those built from the seeds (they would show the answers)."""
    from langchain_core.messages import HumanMessage

    async def trial(tools: list[str]) -> tuple[int, list[dict]]:
        context = {**meta_context(tools), "reflect": False, "example_source": "generic"}
        limit = asyncio.Semaphore(max(1, concurrency))

        async def solve(seed: TaskInstance) -> dict:
            async with limit:
                state = await graph.ainvoke(
                    {"messages": [HumanMessage(seed.question)], "instance": seed.to_dict()}, context=context
                )
            return {"id": seed.id, "answer": state.get("answer"), "reward": state.get("reward"),
                    "steps": [f"{s['action']}[{s['argument']}]" for s in state.get("trajectory") or []]}

        details = await asyncio.gather(*(solve(seed) for seed in task.seeds if seed.has_gold))
        return sum(1 for d in details if (d["reward"] or 0) >= 1.0), list(details)

    return trial


def selected_tools(run_dir: Path, task: Task) -> list[str]:
    path = Path(run_dir) / TOOLS_FILE
    if path.is_file():
        return list(json.loads(path.read_text())["selected"])
    return list(task.default_tools)


def synthesize(settings: Settings, config: SynthesisConfig, base_url: str, stages: tuple[str, ...] = STAGES) -> dict:
    return asyncio.run(run_synthesis(settings, config, base_url, stages))
