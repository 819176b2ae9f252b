"""Differentiate: cut kept trajectories into training records per sub-agent.

The records are cut by :func:`autoact.prompts.records.training_records`, with the
same builders the group-planning graph calls at inference, so training and inference
prompts cannot drift apart. Output: ``RUN/data/{plan,tool,reflect}.jsonl``. CodeAct trajectories (action space
``code``) give one agent's records instead, ``RUN/data/codeact.jsonl``, cut by
:func:`autoact.prompts.codeact.training_records`: the CodeAct agent is not split.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Sequence

from autoact.io import atomic_write_jsonl
from autoact.prompts import codeact
from autoact.prompts.records import FORMATS, training_records
from autoact.settings import AGENTS

ACTION_SPACES = ("text", "code")


def differentiate(
    kept: Iterable[dict[str, Any]],
    task_description: str,
    tools: Sequence[Any],
    out_dir: Path,
    agents: Sequence[str] = AGENTS,
    prompt_format: str = "transcript",
    action_space: str = "text",
) -> dict[str, int]:
    """Write one JSONL per agent; returns record counts per agent. ``prompt_format``
    is the format the graphs will use with the trained adapters (transcript or chat);
    ``action_space`` what the trajectories' actions are (text actions, or code)."""
    if action_space not in ACTION_SPACES:
        raise ValueError(f"unknown action space {action_space!r}; use {' or '.join(ACTION_SPACES)}")
    if action_space == "code":
        return {codeact.AGENT: _differentiate_code(kept, task_description, tools, out_dir)}
    if prompt_format not in FORMATS:
        raise ValueError(f"unknown prompt format {prompt_format!r}; use {' or '.join(FORMATS)}")
    per_agent: dict[str, list[dict]] = {agent: [] for agent in agents}
    for record in kept:
        records = training_records(
            record["trajectory"],
            task_description,
            tools,
            record["question"],
            record.get("reflections") or [],
            record_id=str(record["id"]),
            agents=agents,
            prompt_format=prompt_format,
        )
        for agent, items in records.items():
            per_agent[agent].extend(items)
    return {agent: atomic_write_jsonl(Path(out_dir) / f"{agent}.jsonl", items) for agent, items in per_agent.items()}


def _differentiate_code(kept: Iterable[dict[str, Any]], task_description: str, tools: Sequence[Any],
                        out_dir: Path) -> int:
    names = [getattr(t, "name", t) for t in tools]
    items = [
        item for record in kept
        for item in codeact.training_records(record["trajectory"], task_description, names, record["question"],
                                             record_id=str(record["id"]))
    ]
    return atomic_write_jsonl(Path(out_dir) / f"{codeact.AGENT}.jsonl", items)
