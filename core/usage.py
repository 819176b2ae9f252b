"""Model usage per role, as the graphs record it in their ``usage`` state:
``{role: {"calls", "prompt_tokens", "completion_tokens", "prompt_chars"}}``
(``autoact.graph.state.RoleUsage``): adding it up and its totals."""

from __future__ import annotations

from typing import Any

__all__ = ["USAGE_KEYS", "merge_usage", "usage_totals"]

#: The counts of one role's usage.
USAGE_KEYS = ("calls", "prompt_tokens", "completion_tokens", "prompt_chars")


def merge_usage(total: dict[str, dict], more: dict[str, dict]) -> dict[str, dict]:
    """Per-role usage added up (calls and token counts)."""
    out = {role: dict(u) for role, u in (total or {}).items()}
    for role, u in (more or {}).items():
        old = out.get(role) or dict.fromkeys(USAGE_KEYS, 0)
        out[role] = {k: int(old.get(k, 0)) + int(u.get(k, 0) or 0) for k in USAGE_KEYS}
    return out


def usage_totals(usage: dict[str, Any]) -> tuple[int, int, int]:
    """(model calls, prompt tokens, completion tokens) summed over roles."""
    calls = prompt = completion = 0
    for u in (usage or {}).values():
        if isinstance(u, dict):
            calls += int(u.get("calls") or 0)
            prompt += int(u.get("prompt_tokens") or 0)
            completion += int(u.get("completion_tokens") or 0)
    return calls, prompt, completion
