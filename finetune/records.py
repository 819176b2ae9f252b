"""Training records: reading, validating, hashing, and mixing in general data.

A record is one line of ``RUN/data/<agent>.jsonl``, in one of two formats (see
ARCHITECTURE.md, "Training records"):

- transcript (the default): ``{"id", "agent", "format": "transcript", "prompt":
  str, "completion": str}``, the text sent to ``/v1/completions`` and what the
  agent writes after it;
- chat: ``{"id", "agent", "messages": [...]}``, whose last message is the
  assistant target and everything before it the prompt.

General instruction data (AgentTuning) is a JSONL file of ``{"messages": [...]}``
(chat) or ``{"prompt", "completion"}`` records.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
from pathlib import Path
from typing import Iterable

from autoact.io import iter_json_lines
from autoact.settings import AGENTS

#: The adapter of the "one agent" ablation: one adapter trained on all three agents' data.
ONE_AGENT = "one-agent"
ROLES = ("system", "user", "assistant")


class RecordError(ValueError):
    """A training record or data file that cannot be used, with its location."""


def validate_messages(messages: object, where: str) -> list[dict]:
    """Check the chat-message list of one record; returns it unchanged."""
    if not isinstance(messages, list) or len(messages) < 2:
        raise RecordError(f"{where}: 'messages' must be a list of at least two messages (prompt + target)")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or set(message) - {"role", "content"} or "role" not in message:
            raise RecordError(f"{where}: message {i} must be an object with 'role' and 'content'")
        if message["role"] not in ROLES:
            raise RecordError(f"{where}: message {i} has role {message['role']!r}; roles are {list(ROLES)}")
        if not isinstance(message.get("content"), str):
            raise RecordError(f"{where}: message {i} has no text 'content'")
    if messages[-1]["role"] != "assistant":
        raise RecordError(f"{where}: the last message (the target) must be from the assistant")
    if not messages[-1]["content"].strip():
        raise RecordError(f"{where}: the target (last message) is empty")
    if all(m["role"] == "assistant" for m in messages[:-1]):
        raise RecordError(f"{where}: the prompt has no system or user message")
    return messages


TRANSCRIPT = "transcript"


def is_transcript(record: dict) -> bool:
    return record.get("format") == TRANSCRIPT or ("prompt" in record and "messages" not in record)


def validate_completion(record: dict, where: str) -> dict:
    """Check a transcript record's ``prompt`` and ``completion`` texts."""
    for key in ("prompt", "completion"):
        if not isinstance(record.get(key), str):
            raise RecordError(f"{where}: a transcript record needs a '{key}' string")
    if not record["prompt"].strip():
        raise RecordError(f"{where}: the prompt is empty")
    if not record["completion"].strip():
        raise RecordError(f"{where}: the completion (the target) is empty")
    return record


def record_text(record: dict) -> str:
    """The whole text of a record (prompt and target), for hashing and display."""
    if is_transcript(record):
        return record["prompt"] + record["completion"]
    return json.dumps(record["messages"], sort_keys=True, ensure_ascii=False)


def read_jsonl(path: Path, require_agent: str | None = None, general: bool = False) -> list[dict]:
    """Read and validate one JSONL file of records (or of general chat examples)."""
    path = Path(path)
    if not path.is_file():
        raise RecordError(f"{path}: no such data file")
    records: list[dict] = []
    for lineno, record in iter_json_lines(path, error=RecordError):
        where = f"{path}:{lineno}"
        if not isinstance(record, dict) or not ("messages" in record or "prompt" in record):
            raise RecordError(f"{where}: a record must be an object with 'messages' or 'prompt' and 'completion'")
        if is_transcript(record):
            validate_completion(record, where)
            body = {"format": TRANSCRIPT, "prompt": record["prompt"], "completion": record["completion"]}
        else:
            validate_messages(record["messages"], where)
            body = {"messages": record["messages"]}
        if general:
            record = {"id": str(record.get("id", f"general-{lineno}")), "agent": "general", **body}
        else:
            for key in ("id", "agent"):
                if not isinstance(record.get(key), str) or not record[key]:
                    raise RecordError(f"{where}: the record has no '{key}' string")
            if require_agent and record["agent"] != require_agent:
                raise RecordError(
                    f"{where}: record for agent {record['agent']!r} in the {require_agent!r} file"
                )
        records.append(record)
    if not records:
        raise RecordError(f"{path}: the file holds no records")
    return records


def check_adapter_name(name: str) -> str:
    """An adapter name must be a plain folder and file name (it names both)."""
    if not re.fullmatch(r"[a-z][a-z0-9_-]{0,63}", name or ""):
        raise RecordError(
            f"invalid agent name {name!r}: use lower-case letters, digits, '-' or '_' "
            f"(the agents are {[*AGENTS, ONE_AGENT]})"
        )
    return name


def agent_data_file(run_dir: Path, agent: str) -> Path:
    return Path(run_dir) / "data" / f"{agent}.jsonl"


def load_agent_records(run_dir: Path, agent: str) -> tuple[list[dict], list[Path]]:
    """The records an adapter is trained on, and the files they came from.

    ``agent`` is plan, tool or reflect, ``one-agent`` for all three together, or the
    name of any other record file in ``RUN/data`` (e.g. ``react``).
    """
    check_adapter_name(agent)
    names = AGENTS if agent == ONE_AGENT else (agent,)
    files = [agent_data_file(run_dir, name) for name in names]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise RecordError(
            f"no training data {missing}: run the synthesis step first (it writes RUN/data/<agent>.jsonl)"
        )
    records: list[dict] = []
    for name, path in zip(names, files):
        records.extend(read_jsonl(path, require_agent=name))
    return records, files


def mix_general(records: list[dict], general: list[dict], ratio: float, seed: int, salt: str = "") -> list[dict]:
    """Mix general examples into ``records`` so that they make up ``ratio`` of the result.

    Deterministic for a given seed and salt (the adapter name, so that each adapter
    draws its own sample). General examples are drawn without replacement while the
    pool lasts, then the pool is drawn again in a new order; the mix is shuffled.
    """
    if not 0.0 <= ratio < 1.0:
        raise RecordError(f"the general-data ratio must be in [0, 1), got {ratio}")
    if ratio == 0.0:
        return list(records)
    if not general:
        raise RecordError("general-data mixing asked for, but the general data set is empty")
    wanted = max(1, round(len(records) * ratio / (1.0 - ratio)))
    rng = random.Random(f"{seed}:{salt}")
    drawn: list[dict] = []
    for _ in range(math.ceil(wanted / len(general))):
        drawn.extend(rng.sample(general, len(general)))
    mixed = list(records) + drawn[:wanted]
    rng.shuffle(mixed)
    return mixed


def records_sha256(records: Iterable[dict]) -> str:
    """A hash of the training examples themselves, in order (canonical JSON)."""
    digest = hashlib.sha256()
    for record in records:
        digest.update(record_text(record).encode())
        digest.update(b"\n")
    return digest.hexdigest()
