"""Differentiate: cut kept trajectories into training records per sub-agent.

The records' prompts are made by ``training_records`` of
:mod:`autoact.prompts.transcript` (or, for the chat format, of
:mod:`autoact.prompts.builders`): the same builders the group-planning graph calls
at inference, so training and inference prompts cannot drift apart. Output: ``RUN/data/{plan,tool,reflect}.jsonl``
(and ``react.jsonl`` for the one-model ablation).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Sequence

from autoact.prompts import builders, transcript
from autoact.synth.journal import write_jsonl

AGENTS = ("plan", "tool", "reflect")


def differentiate(
    kept: Iterable[dict[str, Any]],
    task_description: str,
    tools: Sequence[Any],
    out_dir: Path,
    agents: Sequence[str] = AGENTS,
    prompt_format: str = "transcript",
) -> dict[str, int]:
    """Write one JSONL per agent; returns record counts per agent. ``prompt_format``
    is the format the graphs will use with the trained adapters (transcript or chat)."""
    if prompt_format not in ("transcript", "chat"):
        raise ValueError(f"unknown prompt format {prompt_format!r}; use transcript or chat")
    cut = transcript.training_records if prompt_format == "transcript" else builders.training_records
    per_agent: dict[str, list[dict]] = {agent: [] for agent in agents}
    for record in kept:
        records = cut(
            record["trajectory"],
            task_description,
            tools,
            record["question"],
            record.get("reflections") or [],
            record_id=str(record["id"]),
            agents=agents,
        )
        for agent, items in records.items():
            per_agent[agent].extend(items)
    return {agent: write_jsonl(Path(out_dir) / f"{agent}.jsonl", items) for agent, items in per_agent.items()}
