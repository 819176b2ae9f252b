"""Differentiate: cut kept trajectories into training records per sub-agent.

The records' prompts are made by :func:`autoact.prompts.builders.training_records`,
the same builders the group-planning graph calls at inference, so training and
inference prompts cannot drift apart. Output: ``RUN/data/{plan,tool,reflect}.jsonl``
(and ``react.jsonl`` for the one-model ablation).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Sequence

from autoact.prompts.builders import training_records
from autoact.synth.journal import write_jsonl

AGENTS = ("plan", "tool", "reflect")


def differentiate(
    kept: Iterable[dict[str, Any]],
    task_description: str,
    tools: Sequence[Any],
    out_dir: Path,
    agents: Sequence[str] = AGENTS,
) -> dict[str, int]:
    """Write one JSONL per agent; returns record counts per agent."""
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
        )
        for agent, items in records.items():
            per_agent[agent].extend(items)
    return {agent: write_jsonl(Path(out_dir) / f"{agent}.jsonl", items) for agent, items in per_agent.items()}
