"""Tool selection: the meta-agent reads the tool library and picks the task's tools.

The names it returns are validated against the library (case-insensitive, with or
without the ``[argument]`` part); unknown names are recorded and dropped. If no valid
name remains, the task's default tools are used and the record says so. The choice
is saved in ``RUN/tools.json`` and is what every later prompt lists.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from autoact.prompts.meta import tool_selection_messages
from autoact.tools import Task, tool_library
from autoact.tools.io import atomic_write_text

TOOLS_FILE = "tools.json"


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


async def select_tools(
    task: Task, model: Any, run_dir: Path, seed: int = 0, fixed: list[str] | None = None
) -> dict[str, Any]:
    """The meta-agent's choice (or ``fixed``, a user's override), saved once per run."""
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
    record = {
        "selected": valid or list(task.default_tools),
        "chosen_by": "model" if valid else "task defaults (no valid name in the model's answer)",
        "model_choice": valid,
        "unknown_names": unknown,
        "fallback_to_defaults": not valid,
        "offered": names,
        "raw": raw,
    }
    atomic_write_text(path, json.dumps(record, indent=2))
    return record
