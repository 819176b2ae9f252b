"""Filter: keep the trajectories that earned full reward, up to a cap.

A kept trajectory must have full reward (exact for multiple choice, F1 = 1 for open
QA; ``min_reward`` can relax this, e.g. for a model too small to reach it)
and, for a rationalized (hinted) episode, an answer that a tool observation shows and, where the agent reflected, a last verdict of ``right`` — a correct answer
that the agent itself judged wrong would teach the reflect agent the wrong label.
Every dropped trajectory is counted by reason.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Iterable

from autoact.eval.metrics import normalize_answer

FULL_REWARD = 1.0


def answer_in_observations(record: dict[str, Any]) -> bool:
    """Whether a tool observation of the episode contains the final answer."""
    answer = normalize_answer(record.get("answer") or "")
    observations = " ".join(
        normalize_answer(s.get("observation") or "") for s in record.get("trajectory") or [] if s.get("action") != "Finish"
    )
    return bool(answer) and f" {answer} " in f" {observations} "


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
    if record.get("origin") == "rationalized" and not answer_in_observations(record):
        return "hinted answer not found by a tool"
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
              "min_reward": min_reward}
    return kept, report
