"""Tool selection: the meta-agent reads the tool library and picks the task's tools.

The names it returns are validated against the library (case-insensitive, with or
without the ``[argument]`` part); unknown names are recorded and dropped. If no valid
name remains, the task's default tools are used and the record says so.

The choice is then **checked**. A task with a corpus is open-domain: a choice without
an information tool (one whose observations come from the world, see
``autoact.tools.library``) cannot answer it and is augmented with the default set's
information tools (the 0.5B model once chose Calculator and Python only for the
archipelago task). Then, given a ``trial`` (the ReAct graph solving the task's seed
questions, which have gold answers), the choice and the task's default set are both
tried; the default set replaces the choice when it solves more seeds. The record
(``RUN/tools.json``) says what the model chose, what was tried, and why the final
set won; every later prompt lists that set.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Awaitable, Callable, Sequence

from autoact.io import atomic_write_text
from autoact.prompts.meta import tool_selection_messages
from autoact.tools import Task, tool_library
from autoact.tools.library import information_tools as registered_information_tools

TOOLS_FILE = "tools.json"

#: ``trial(tool_names) -> (seeds solved at full reward, per-seed details)``.
Trial = Callable[[list[str]], Awaitable[tuple[int, list[dict]]]]


def parse_tool_names(text: str, library: list[str]) -> tuple[list[str], list[str]]:
    """(valid names in library order, unknown names) from the model's answer."""
    line = text
    match = re.search(r"Tools?\s*:\s*(.+)", text or "", re.IGNORECASE)
    if match:
        line = match.group(1)
    by_key = {name.lower(): name for name in library}
    chosen, unknown = set(), []
    for raw in re.split(r"[,;\n]|\band\b", line or ""):
        word = re.sub(r"\[.*?\]?$", "", raw.strip().strip("-*`'\". ")).strip()
        if not word:
            continue
        name = by_key.get(word.lower())
        if name:
            chosen.add(name)
        elif len(word) < 30:
            unknown.append(word)
    return [n for n in library if n in chosen], unknown


def information_tools(names: Sequence[str]) -> list[str]:
    kinds = registered_information_tools()
    return [n for n in names if n in kinds]


def ensure_information(task: Task, chosen: list[str], library: Sequence[str]) -> tuple[list[str], str | None]:
    """``chosen``, augmented with the task defaults' information tools when the task
    has a corpus and ``chosen`` has none; (set, why it was augmented or None)."""
    if not len(task.corpus) or information_tools(chosen):
        return chosen, None
    extra = [n for n in information_tools(task.default_tools) if n not in chosen]
    if not extra:
        return chosen, None
    names = set(chosen) | set(extra)
    return [n for n in library if n in names], f"no information tool for an open-domain task: added {extra}"


async def select_tools(
    task: Task, model: Any, run_dir: Path, seed: int = 0, fixed: list[str] | None = None,
    trial: Trial | None = None,
) -> dict[str, Any]:
    """The meta-agent's choice (or ``fixed``, a user's override), checked as the
    module docstring says, and saved once per run."""
    path = Path(run_dir) / TOOLS_FILE
    if path.is_file():  # resumable: a saved choice is final for the run
        return json.loads(path.read_text())
    library = tool_library(task)
    if fixed:
        unknown = [name for name in fixed if name not in library]
        if unknown:
            raise ValueError(f"unknown tool(s) {unknown}; the library has {sorted(library)}")
        record = {"selected": list(fixed), "chosen_by": "user", "offered": sorted(library)}
        atomic_write_text(path, json.dumps(record, indent=2))
        return record
    offered = list(library.values())
    examples = [s.question for s in task.seeds][:3]
    messages = tool_selection_messages(task.description, offered, examples)
    reply = await model.ainvoke(messages, seed=seed)
    raw = str(reply.content)
    names = [t.name for t in offered]
    valid, unknown = parse_tool_names(raw, names)
    candidate = valid or list(task.default_tools)
    candidate, augmented = ensure_information(task, candidate, names)
    record: dict[str, Any] = {
        "model_choice": valid,
        "unknown_names": unknown,
        "fallback_to_defaults": not valid,
        "augmented": augmented,
        "offered": names,
        "raw": raw,
    }
    selected, why = candidate, "the model's choice" if valid else "task defaults (no valid name in the model's answer)"
    if augmented:
        why = f"the model's choice, augmented ({augmented})"
    defaults = list(task.default_tools)
    if trial is not None and task.seeds and sorted(candidate) != sorted(defaults):
        tried = {}
        for label, tools in (("choice", candidate), ("defaults", defaults)):
            solved, details = await trial(tools)
            tried[label] = {"tools": tools, "seeds_solved": solved, "seeds": len(task.seeds), "episodes": details}
        record["trials"] = tried
        if tried["defaults"]["seeds_solved"] > tried["choice"]["seeds_solved"]:
            selected = defaults
            why = (f"the task's default set solved more seed questions ({tried['defaults']['seeds_solved']} vs "
                   f"{tried['choice']['seeds_solved']} of {len(task.seeds)}) than the model's choice")
        else:
            why += (f", kept after trial: it solved {tried['choice']['seeds_solved']} of {len(task.seeds)} seed "
                    f"questions, the default set {tried['defaults']['seeds_solved']}")
    record.update({"selected": selected, "chosen_by": "model" if selected == candidate and valid else "check",
                   "why": why})
    atomic_write_text(path, json.dumps(record, indent=2))
    return record
