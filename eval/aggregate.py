"""From per-question records to the numbers a paper reports.

HotpotQA: mean token F1 and exact match (×100) per level, and "All" = the mean of the
level means (AutoAct's tables average easy / medium / hard). ScienceQA: accuracy
(×100) per grade group and All = the mean of the groups. A custom benchmark is scored
like HotpotQA, or like ScienceQA when its questions have choices. The mean over all
questions (``micro``) is kept too; with equal-sized groups the two agree.

Self-debugging (``self_debugging``): how many turns an episode takes, how many of
them went wrong, and how often an episode that went wrong still finished. A turn is
a trajectory step the model wrote: a tool action, a Finish, a CodeAct code block;
not the Finish step CodeAct adds to record what ``finish()`` gave in the block
before it. A turn is an error when the graph could not use it (no action or an
unknown one, a missing argument, a turn without a code block), the environment
refused it, or its code block did not run to the end (sandbox status other than
``ok``). Records that lack what this needs (older ones) count in none.

Where answers were lost (``answer_outcomes``, open QA): each episode is solved (F1 = 1),
partly right (0 < F1 < 1), or wrong; a wrong one either *read* the gold answer in a
tool observation and did not give it (an extraction failure) or never saw it (a
retrieval failure). The split says which half of the agent to improve.

Several evaluation directories (one per seed) combine into mean ± sample standard
deviation of each cell.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from typing import Any, Iterable, Sequence

from autoact.actions import ENV_ACTIONS, FINISH, format_action, parse_action
from autoact.metrics import contains_phrase, mean
from autoact.prompts.codeact import CODE

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


def _text_turn_error(action: str, argument: str, tools: Sequence[str]) -> bool:
    """Whether the graph recorded the step as unusable (``invalid_step``: an action
    not offered, or none, or no argument) or the environment refused it: the action is
    read again exactly as ``TaskEnv.step`` reads it."""
    if action not in (*tools, FINISH) or not argument:
        return True
    if action == FINISH:  # the graph ends the episode itself; the environment never reads it
        return False
    try:
        parse_action(format_action(action, argument), valid=[*tools, *ENV_ACTIONS])
    except Exception:  # noqa: BLE001 - TaskEnv.step refuses on any parse failure
        return True
    return False


def turn_errors(steps: Sequence[dict[str, Any]], tools: Sequence[str]) -> list[bool] | None:
    """One flag per turn of an episode, True for an error turn (see the module notes);
    ``tools`` are the tools the method was offered. None when the steps cannot tell:
    a code block without the sandbox's status (recorded before it was kept)."""
    flags = []
    for i, step in enumerate(steps):
        action, argument = step.get("action"), step.get("argument")
        if action == CODE:
            if argument and "status" not in step:
                return None
            flags.append(not argument or step["status"] != "ok")  # no block: a format error
        elif action == FINISH and i and steps[i - 1].get("action") == CODE:
            continue  # CodeAct's record of the answer finish() gave in the block before
        else:
            flags.append(_text_turn_error(action, argument, tools))
    return flags


def record_turns(record: dict[str, Any], tools: Sequence[str]) -> list[bool] | None:
    """The error flags of a question's turns, in order over every trial (Reflexion
    records keep only the last trial's trajectory, and each trial's actions); None
    when the record cannot tell (no trajectory, trials without their actions)."""
    trials = record.get("trials")
    if trials:
        if any("actions" not in t for t in trials):
            return None
        episodes = [t["actions"] for t in trials]
    elif "trajectory" in record:
        episodes = [record["trajectory"]]
    else:
        return None
    flags: list[bool] = []
    for steps in episodes:
        more = turn_errors(steps, tools)
        if more is None:
            return None
        flags += more
    return flags


def self_debugging(records: Sequence[dict[str, Any]], tools: Sequence[str]) -> dict[str, Any] | None:
    """Turns per question, the share of turns that were errors (%), and of the episodes
    with an error turn the share that recovered (%): a later turn, and the episode
    ended with halt reason ``finish``. Over the records that can tell, with the counts
    behind each share; None when no record can (the shares are None without turns or
    without an erroring episode)."""
    episodes = [(flags, r.get("halt_reason")) for r in records if (flags := record_turns(r, tools)) is not None]
    if not episodes:
        return None
    turns = sum(len(flags) for flags, _ in episodes)
    errors = sum(sum(flags) for flags, _ in episodes)
    erring = [(flags, halt) for flags, halt in episodes if any(flags)]
    recovered = sum(1 for flags, halt in erring if halt == "finish" and any(flags[:-1]))
    return {
        "episodes": len(episodes),
        "turns": turns,
        "error_turns": errors,
        "episodes_with_error": len(erring),
        "recovered": recovered,
        "turns_per_q": turns / len(episodes),
        "error_turn_pct": 100.0 * errors / turns if turns else None,
        "recovered_pct": 100.0 * recovered / len(erring) if erring else None,
    }


OUTCOMES = ("solved", "partly right", "read, not given", "never read")


def observations(record: dict[str, Any]) -> list[str] | None:
    """The tool observations an episode saw (every trial's for Reflexion); None for a
    record without steps."""
    trials = record.get("trials")
    if trials and all(isinstance(t.get("actions"), list) for t in trials):
        episodes = [t["actions"] for t in trials]
    elif isinstance(record.get("trajectory"), list):
        episodes = [record["trajectory"]]
    else:
        return None
    return [str(step.get("observation") or "") for steps in episodes for step in steps if isinstance(step, dict)]


def answer_outcome(record: dict[str, Any]) -> str | None:
    """One of ``OUTCOMES`` for an open-QA record with steps, else None (multiple
    choice, no gold, no trajectory)."""
    gold = record.get("gold")
    if record.get("choices") or gold in (None, "", []):
        return None
    seen = observations(record)
    if seen is None:
        return None
    f1 = record_value(record, "f1")
    if f1 >= 1.0 - 1e-9:
        return "solved"
    if f1 > 0:
        return "partly right"
    golds = [gold] if isinstance(gold, str) else list(gold)
    read = any(contains_phrase(obs, g, lenient=True) for obs in seen for g in golds)
    return "read, not given" if read else "never read"


def outcome_cells(counts: dict[str, int]) -> list[str]:
    """``n (p %)`` per outcome, in ``OUTCOMES`` order: the report's and the benchmark's cells."""
    total = sum(counts.values()) or 1
    return [f"{counts[k]} ({100.0 * counts[k] / total:.0f} %)" for k in OUTCOMES]


def answer_outcomes(records: Sequence[dict[str, Any]]) -> dict[str, int] | None:
    """Episodes per outcome (all four keys), over the records that can tell; None when
    none can."""
    counts = Counter(o for r in records if (o := answer_outcome(r)) is not None)
    return {o: counts[o] for o in OUTCOMES} if counts else None


def mean_std(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (None for a single value)."""
    values = [float(v) for v in values]
    if not values:
        return 0.0, None
    m = sum(values) / len(values)
    if len(values) < 2:
        return m, None
    return m, math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))
