"""The whole self-planning data stage: ``autoact synthesize``.

    instances (self-instruct, or the task's own training questions)
      -> tool selection -> trajectories -> filter -> differentiate

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

from autoact.models import chat_model
from autoact.settings import Settings
from autoact.synth.differentiate import differentiate
from autoact.synth.filter import filter_trajectories
from autoact.modelhub import file_sha256
from autoact.synth.journal import Journal, write_jsonl
from autoact.synth.self_instruct import INSTANCES_FILE, SelfInstruct, SelfInstructConfig, load_instances
from autoact.synth.tool_selection import TOOLS_FILE, select_tools
from autoact.synth.trajectories import TRAJECTORIES_FILE, synthesize_trajectories
from autoact.tools import Task, TaskInstance, load_task, tool_library
from autoact.tools.io import atomic_write_text

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
    self_instruct: SelfInstructConfig = field(default_factory=SelfInstructConfig)
    max_steps: int = 6
    max_reflections: int = 1
    max_kept: int | None = 200
    concurrency: int = 8
    samples: int = 1  # trajectories per instance (sample 0 greedy, the rest at temperature)
    sample_temperature: float = 0.7
    tools: list[str] | None = None  # a fixed tool set instead of the meta-agent's choice
    limit: int | None = None  # solve only the first N instances
    rationalize: bool = False  # STaR: retry unsolved instances with the answer as a hint
    min_reward: float = 1.0  # the filter's threshold (the method keeps full reward only)


def task_for(config: SynthesisConfig) -> Task:
    return load_task(config.task, config.data, config.corpus)


def instances_for(task: Task, config: SynthesisConfig, run_dir: Path) -> list[TaskInstance]:
    if config.instances == "task":
        chosen = task.split("train") or [i for i in task.instances if i.meta.get("split") != "test"]
        return [i for i in chosen if i.has_gold]
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
    files = [INSTANCES_FILE, TOOLS_FILE, TRAJECTORIES_FILE, KEPT_FILE, "data/plan.jsonl", "data/tool.jsonl", "data/reflect.jsonl"]
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

    if "tools" in stages:
        meta = chat_model("meta", settings, base_url, temperature=0.0, max_tokens=48, stop=["\n\n"])
        reports["tools"] = await select_tools(task, meta, run_dir, seed=settings.seed, fixed=config.tools)
        update_manifest(run_dir, settings, config, task, "tools", reports["tools"])

    selected = selected_tools(run_dir, task)
    if "trajectories" in stages:
        instances = instances_for(task, config, run_dir)[: config.limit]
        if not instances:
            raise RuntimeError(f"no instances to solve in {run_dir}: run the self-instruct stage first")
        if graph is None:
            from autoact.graph.react import build_react_graph

            graph = build_react_graph(settings=settings)
        context = {
            "base_url": base_url,
            "task": config.task,
            "data": config.data,
            "corpus": config.corpus,
            "tools": selected,
            "max_steps": config.max_steps,
            "reflect": True,
            "max_reflections": config.max_reflections,
            "temperature": 0.0,
        }
        reports["trajectories"] = await synthesize_trajectories(
            instances, graph, context, run_dir, config.concurrency, config.samples, config.sample_temperature,
            config.rationalize,
        )
        update_manifest(run_dir, settings, config, task, "trajectories", reports["trajectories"])

    if "filter" in stages:
        records = Journal(run_dir / TRAJECTORIES_FILE).records
        kept, report = filter_trajectories(records, config.max_kept, config.min_reward)
        write_jsonl(run_dir / KEPT_FILE, kept)
        reports["filter"] = report
        log.info("filter: kept %d of %d trajectories", report["kept"], report["total"])
        update_manifest(run_dir, settings, config, task, "filter", report)

    if "differentiate" in stages:
        kept = Journal(run_dir / KEPT_FILE).records if (run_dir / KEPT_FILE).is_file() else []
        library = tool_library(task)
        tools = [library[name] for name in selected if name in library]
        reports["differentiate"] = differentiate(kept, task.description, tools, run_dir / "data")
        update_manifest(run_dir, settings, config, task, "differentiate", reports["differentiate"])
    return reports


def selected_tools(run_dir: Path, task: Task) -> list[str]:
    path = Path(run_dir) / TOOLS_FILE
    if path.is_file():
        return list(json.loads(path.read_text())["selected"])
    return list(task.default_tools)


def synthesize(settings: Settings, config: SynthesisConfig, base_url: str, stages: tuple[str, ...] = STAGES) -> dict:
    return asyncio.run(run_synthesis(settings, config, base_url, stages))
