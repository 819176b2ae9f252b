"""Filter: keep the trajectories that earned full reward, up to a cap.

A kept trajectory must have full reward (exact for multiple choice, F1 = 1 for open
QA; ``min_reward`` can relax this, e.g. for a model too small to reach it) and,
where the agent reflected, a last verdict of ``right`` (a correct answer that the
agent itself judged wrong would teach the reflect agent the wrong label).

A rationalized (hinted) episode was shown the answer, so its reward proves nothing:
it is kept only if an *information* tool (one whose observation comes from the
world, see ``autoact.tools.library``) showed the answer in its observation, and the
agent did not put the answer into that tool's argument. Typing the answer into a
calculator (``Calculator[1802]`` -> ``1802``) or searching for it by name is not
finding it.

An open-QA trajectory's last thought must state the answer before it concludes
(``rationale_states_answer``): "The kelp press was invented by Agnes Pell in 1856. The
question asks who invented it, so the answer is Agnes Pell." is kept; "The first salt
kiln still stands beside the bridge. The question asks in what year, so the answer is
1831." is not, although its answer is right: the agents would learn to quote any
sentence and then name an answer it does not contain. Every dropped trajectory is
counted by reason.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any, Iterable

from autoact.metrics import contains_phrase, normalize_answer_lenient as normalize
from autoact.tools.library import information_tools as registered_information_tools

FULL_REWARD = 1.0


def answer_found_by_information(record: dict[str, Any], information_tools: Iterable[str] | None = None) -> bool:
    """Whether an information tool's observation showed the final answer to an agent
    that had not written the answer into that tool's argument."""
    answer = record.get("answer") or ""
    if not normalize(answer):
        return False
    tools = set(registered_information_tools() if information_tools is None else information_tools)
    for step in record.get("trajectory") or []:
        if step.get("action") not in tools:
            continue
        if contains_phrase(step.get("argument") or "", answer, lenient=True):
            continue
        if contains_phrase(step.get("observation") or "", answer, lenient=True):
            return True
    return False


_CONCLUSION = re.compile(r"\banswer (?:is|was|would be)\b", re.IGNORECASE)


def rationale_states_answer(record: dict[str, Any]) -> bool | None:
    """Whether the Finish step's thought, up to its concluding "... the answer is",
    contains the answer (whole words, lenient normalisation); the whole thought when it
    has no such clause. None where the rule does not apply: multiple choice, no answer,
    or a Finish without a thought (CodeAct)."""
    if record.get("choices") or "acc" in (record.get("scores") or {}):  # multiple choice (older records: by score)
        return None
    answer = record.get("answer") or ""
    finish = next((s for s in reversed(record.get("trajectory") or []) if s.get("action") == "Finish"), None)
    thought = str((finish or {}).get("thought") or "").strip()
    if not normalize(answer) or not thought:
        return None
    conclusions = list(_CONCLUSION.finditer(thought))
    evidence = thought[:conclusions[-1].start()] if conclusions else thought
    return contains_phrase(evidence, answer, lenient=True)


def drop_reason(record: dict[str, Any], min_reward: float = FULL_REWARD) -> str | None:
    if record.get("status") != "ok":
        return "error"
    if record.get("reward") is None:
        return "no reward"
    if float(record["reward"]) < min_reward - 1e-9:
        return f"reward below {min_reward:g}"
    reflections = record.get("reflections") or []
    if reflections and reflections[-1].get("verdict") != "right":
        return "judged wrong by its own reflection"
    if not any(step.get("action") == "Finish" for step in record.get("trajectory") or []):
        return "no Finish step"
    # A hinted episode must have found its answer with a tool: trained without the
    # hint, an answer that appears from nowhere would teach the agents to guess.
    if record.get("origin") == "rationalized" and not answer_found_by_information(record):
        return "hinted answer not found by an information tool"
    if rationale_states_answer(record) is False:
        return "last thought does not state the answer before concluding"
    return None


def filter_trajectories(
    records: Iterable[dict[str, Any]], cap: int | None = None, min_reward: float = FULL_REWARD
) -> tuple[list[dict], dict]:
    """(kept records sorted by instance, one per instance; report with counts by reason)."""
    records = list(records)
    reasons: Counter[str] = Counter()
    kept, solved = [], set()
    def order(r: dict[str, Any]) -> tuple:  # per instance: zero-shot samples in order, then hinted ones
        sample = r.get("sample", 0)
        return (str(r.get("instance_id", r["id"])), isinstance(sample, str), str(sample).zfill(6))

    for record in sorted(records, key=order):
        reason = drop_reason(record, min_reward)
        instance_id = str(record.get("instance_id", record["id"]))
        if reason is None and instance_id in solved:
            reason = "instance already has a kept trajectory"
        if reason:
            reasons[reason] += 1
        else:
            kept.append(record)
            solved.add(instance_id)
    capped = 0
    if cap is not None and len(kept) > cap:
        capped = len(kept) - cap
        kept = kept[:cap]
    report = {"total": len(records), "kept": len(kept), "dropped": dict(reasons), "over_cap": capped,
              "min_reward": min_reward, "by_kind": kept_by_kind(records, kept)}
    return kept, report


def kept_by_kind(records: list[dict[str, Any]], kept: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Questions tried and kept per answer kind of grounded self-instruct (``meta.kind``;
    bridge questions as ``"bridge"``): which kinds the agents will learn from, and
    which the meta-agent could not solve. Empty for instances without a kind."""
    def kind(record: dict[str, Any]) -> str | None:
        meta = record.get("meta") or {}
        return "bridge" if meta.get("bridge") else meta.get("kind")

    table: dict[str, dict[str, int]] = {}
    for name, rows in (("questions", records), ("kept", kept)):
        seen: dict[str, set[str]] = {}
        for record in rows:
            if (k := kind(record)) is not None:
                seen.setdefault(k, set()).add(str(record.get("instance_id", record["id"])))
        for k, ids in seen.items():
            table.setdefault(k, {"questions": 0, "kept": 0})[name] = len(ids)
    return dict(sorted(table.items()))
