"""From per-question records to the numbers a paper reports.

HotpotQA: mean token F1 and exact match (×100) per level, and "All" = the mean of the
level means (AutoAct's tables average easy / medium / hard). ScienceQA: accuracy
(×100) per grade group and All = the mean of the groups. A custom benchmark is scored
like HotpotQA, or like ScienceQA when its questions have choices. The mean over all
questions (``micro``) is kept too; with equal-sized groups the two agree.

Several evaluation directories (one per seed) combine into mean ± sample standard
deviation of each cell.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from typing import Any, Iterable, Sequence

from autoact.eval.metrics import mean

QA_METRICS = ("f1", "em")
MC_METRICS = ("acc",)
BENCHMARK_METRICS = {"hotpotqa": QA_METRICS, "scienceqa": MC_METRICS}
METRIC_LABELS = {"f1": "F1", "em": "EM", "acc": "Accuracy"}
ALL = "All"
#: The usual order of the groups of the known benchmarks; other groups follow, sorted.
GROUP_ORDER = ("easy", "medium", "hard", "grade1-4", "grade5-8", "grade9-12")
COST_FIELDS = ("calls", "prompt_tokens", "completion_tokens", "latency_s")


def metrics_for(benchmark: str, records: Iterable[dict[str, Any]] = ()) -> tuple[str, ...]:
    """The metrics of a benchmark (for ``custom``: accuracy when questions have choices)."""
    if benchmark in BENCHMARK_METRICS:
        return BENCHMARK_METRICS[benchmark]
    records = list(records)
    if records and all("acc" in (r.get("scores") or {}) for r in records):
        return MC_METRICS
    return QA_METRICS


def group_of(meta: dict[str, Any] | None) -> str:
    """A question's group: its level (HotpotQA), its grade file (ScienceQA), else "all"."""
    level = (meta or {}).get("level")
    return str(level) if level not in (None, "") else "all"


def ordered_groups(groups: Iterable[str]) -> list[str]:
    groups = list(dict.fromkeys(groups))
    known = [g for g in GROUP_ORDER if g in groups]
    return known + sorted(g for g in groups if g not in GROUP_ORDER)


def record_value(record: dict[str, Any], metric: str) -> float:
    value = (record.get("scores") or {}).get(metric)
    return float(value) if isinstance(value, (int, float)) else 0.0


def summarize(records: Sequence[dict[str, Any]], metrics: Sequence[str]) -> dict[str, Any]:
    """Per-group and All scores (×100), cost per question, halt reasons."""
    by_group: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        by_group[str(record.get("group") or "all")].append(record)
    groups = {
        g: {"n": len(by_group[g]), **{m: 100.0 * mean(record_value(r, m) for r in by_group[g]) for m in metrics}}
        for g in ordered_groups(by_group)
    }
    return {
        "n": len(records),
        "groups": groups,
        "all": {m: mean(groups[g][m] for g in groups) for m in metrics} if groups else {m: 0.0 for m in metrics},
        "micro": {m: 100.0 * mean(record_value(r, m) for r in records) for m in metrics},
        "cost": cost(records),
        "halt_reasons": dict(Counter(str(r.get("halt_reason")) for r in records)),
    }


def cost(records: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Mean model calls, prompt and completion tokens and latency per question, and totals."""
    def values(key: str) -> list[float]:
        if key == "latency_s":
            return [float(r.get("latency_s") or 0.0) for r in records]
        if key == "calls":
            return [float(r.get("calls") or 0) for r in records]
        field = key.split("_")[0]
        return [float((r.get("tokens") or {}).get(field) or 0) for r in records]

    out: dict[str, float] = {}
    for key in COST_FIELDS:
        vals = values(key)
        out[f"{key}_per_q"] = mean(vals)
        out[f"{key}_total"] = float(sum(vals))
    return out


def mean_std(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (None for a single value)."""
    values = [float(v) for v in values]
    if not values:
        return 0.0, None
    m = sum(values) / len(values)
    if len(values) < 2:
        return m, None
    return m, math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))
