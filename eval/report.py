"""``autoact report``: Markdown and HTML reports from evaluation directories.

Every number is recomputed from the per-question records (``<method>.jsonl``), so
the table is exactly the mean of the records. Several directories are several seeds
of one benchmark: each cell becomes mean ± sample standard deviation over them.
The report holds the table in the paper's layout (methods × levels, then All), the
cost per question (model calls, tokens, latency), halt reasons, where answers were
lost (retrieval or extraction, see ``aggregate.answer_outcome``), self-debugging
(turns per question, error turns, recovery from errors), what each method is, and
two PNG plots: score by method and group, and cost against score.
"""

from __future__ import annotations

import html
import json
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

from autoact.eval.aggregate import (
    ALL,
    METRIC_LABELS,
    OUTCOMES,
    answer_outcomes,
    outcome_cells,
    metrics_for,
    mean_std,
    ordered_groups,
    self_debugging,
    summarize,
)
from autoact.eval.methods import ROUND_METHOD, UnknownMethod, method_named
from autoact.io import atomic_write_text, scan_jsonl

REPORT_MD = "report.md"
REPORT_HTML = "report.html"
REPORT_JSON = "report.json"
PLOTS_DIR = "plots"
#: Display order: the baselines, AutoAct, then its ablations (as the paper's tables).
METHOD_ORDER = (
    "cot", "zero-shot-plan", "react", "codeact", "codeact-ft", "reflexion", "autoact", "one-agent", "no-reflect",
    "one-pass", "no-finetune",
)
BENCHMARK_TITLES = {"hotpotqa": "HotpotQA", "scienceqa": "ScienceQA", "custom": "custom benchmark", "demo": "demo task"}


class ReportError(ValueError):
    pass


# ---- reading ---------------------------------------------------------------------------------
def read_records(path: Path) -> list[dict[str, Any]]:
    """The records of a method file, read only: a torn last line (a run killed
    mid-write) and blank lines are skipped, a repeated id counts once; any other
    unreadable line is an error."""
    scan = scan_jsonl(path, key="id")
    unreadable = [n for n in scan.bad_lines if n not in scan.blank_lines]
    if unreadable:
        raise ReportError(f"{path}:{unreadable[0]}: not valid JSON")
    return scan.records


def read_eval_dir(path: str | Path) -> dict[str, Any]:
    """``{"path", "manifest", "benchmark", "metrics", "records": {method: [...]}}``."""
    path = Path(path)
    manifest_path = path / "eval.json"
    if not manifest_path.is_file():
        raise ReportError(f"{path} is not an evaluation directory (no eval.json); run `autoact eval --out {path}`")
    manifest = json.loads(manifest_path.read_text())
    files = sorted(p for p in path.glob("*.jsonl") if not p.name.endswith(".errors.jsonl"))
    records = {p.stem: read_records(p) for p in files}
    records = {m: r for m, r in records.items() if r}
    benchmark = manifest.get("benchmark", "custom")
    metrics = metrics_for(benchmark, [r for rs in records.values() for r in rs])
    return {"path": path, "manifest": manifest, "benchmark": benchmark, "metrics": metrics,
            "records": {m: records[m] for m in method_order(records)}}


def method_order(names: Sequence[str]) -> list[str]:
    names = list(dict.fromkeys(names))
    rounds = sorted((m for m in names if ROUND_METHOD.match(m)), key=lambda m: int(ROUND_METHOD.match(m).group(1)))
    order: list[str] = []
    for m in METHOD_ORDER:
        if m in names:
            order.append(m)
        if m == "autoact":
            order.extend(rounds)  # the self-training rounds right after AutoAct's own row
    return order + sorted(m for m in names if m not in order)


def _description(method: str) -> str:
    try:
        return method_named(method).summary
    except UnknownMethod:
        return ""


#: What a reader comparing with the paper's table must know, per benchmark.
SCORING = {
    "hotpotqa": "F1 and EM as the official HotpotQA script defines them (lower-case, ASCII punctuation and "
                "articles removed; yes/no/noanswer must match exactly; two empty answers score F1 0).",
    "demo": "F1 and EM with the official HotpotQA rules.",
    "custom": "F1 and EM with the official HotpotQA rules (open answers), accuracy for multiple choice.",
    "scienceqa": "Accuracy. An answer is mapped to an option by its letter, its exact text, a phrase such as "
                 "'the answer is (B)', containment of exactly one option's text, or a close fuzzy match; an "
                 "answer that names no option counts as wrong (the original code maps it to option A).",
}
ENVIRONMENT = (
    "Tools run on an offline corpus: Retrieve / Lookup / Search read the benchmark's own context paragraphs "
    "(gold and distractor paragraphs of every question loaded), not the live Wikipedia the paper's agents "
    "searched, so retrieval is easier and the absolute numbers are not comparable with the paper's; the "
    "comparison between methods on the same model, corpus and questions is."
)


def setup_lines(report: dict[str, Any]) -> list[str]:
    """The set-up a reader needs to tell what is comparable: model, corpus, sizes, sampling, seeds, scoring."""
    m = report.get("setup") or {}
    lines = [f"Model: {', '.join(report['model'])}."]
    if report["benchmark"] in ("hotpotqa", "demo", "custom"):
        lines.append(ENVIRONMENT)
    sampling = m.get("sampling") or {}
    if sampling:
        lines.append(
            "Inference sampling: " + ", ".join(f"{k} {v}" for k, v in sampling.items() if v is not None)
            + f"; seeds {', '.join(map(str, report.get('seed_values') or []))}."
        )
    options = m.get("options") or {}
    if options:
        lines.append("Episode limits: " + ", ".join(f"{k} {v}" for k, v in options.items()) + ".")
    lines.append(f"Questions: {m.get('questions', '?')} ({m.get('data', 'default data')}"
                 + (f", split {m['split']}" if m.get("split") else "") + ").")
    for run in report.get("runs") or []:
        lines.append(run)
    lines.append("Scoring: " + SCORING.get(report["benchmark"], SCORING["custom"]))
    return lines


def run_lines(run_dir: str | Path) -> list[str]:
    """What the run trained on: synthesized data sizes, the filter, the training set-up,
    from ``RUN/manifest.json``, ``RUN/learning.json`` and the adapters' manifests."""
    run_dir = Path(run_dir)
    lines = []
    manifest_path = run_dir / "manifest.json"
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
        stages, synth = manifest.get("stages") or {}, manifest.get("synthesis") or {}
        instances = (stages.get("self-instruct") or {}).get("instances")
        kept = (stages.get("filter") or {}).get("kept")
        total = (stages.get("filter") or {}).get("total")
        sep = (stages.get("self-instruct") or {}).get("separation") or {}
        source = ("self-instructed questions" if synth.get("instances") == "self-instruct"
                  else "questions of the training split")
        lines.append(
            f"Training data ({run_dir}): {instances if instances is not None else 'the'} {source}"
            + (f" (none written from the {sep['excluded_paragraphs']} paragraphs that support evaluation questions)"
               if sep.get("excluded_paragraphs") else "")
            + f", {total} trajectories synthesized (greedy + {max(0, (synth.get('samples') or 1) - 1)} samples at "
            f"temperature {synth.get('sample_temperature')}, at most {synth.get('max_steps')} steps), "
            f"{kept} kept at reward >= {synth.get('min_reward')}"
            + (" (with STaR-style hinted retries: an ablation, not AutoAct)" if synth.get("rationalize") else "")
            + f"; tools {', '.join((stages.get('tools') or {}).get('selected') or [])}."
        )
        by_kind = (stages.get("filter") or {}).get("by_kind") or {}
        if by_kind:
            lines.append("Kept per kind of question (kept of tried): " + ", ".join(
                f"{kind} {row['kept']} of {row['questions']}" for kind, row in by_kind.items()) + ".")
    learning_path = run_dir / "learning.json"
    if learning_path.is_file():
        for r in json.loads(learning_path.read_text()).get("rounds") or []:
            lines.append(
                f"Round {r['round']}: {r.get('instances_solved')} of {r.get('instances')} synthesized questions solved "
                f"(new this round: {r.get('newly_solved')}), {r.get('kept')} trajectories kept, records "
                + ", ".join(f"{k} {v}" for k, v in (r.get("records") or {}).items())
                + (f", adapters {', '.join(r['adapters'])}" if r.get("adapters") else "") + "."
            )
    adapter_manifest = run_dir / "adapters" / "plan" / "autoact-adapter.json"
    if adapter_manifest.is_file():
        a = json.loads(adapter_manifest.read_text())
        st = a.get("settings") or {}
        lines.append(
            f"Fine-tuning: LoRA r {st.get('lora_r')}, alpha {st.get('lora_alpha')}, dropout {st.get('lora_dropout')} "
            f"on {st.get('target_modules')}"
            + (f" of the last {st['lora_layers']} layers" if st.get("lora_layers") else "")
            + f", lr {st.get('learning_rate')}, {st.get('epochs')} epochs, {st.get('lr_scheduler')} schedule, "
            f"warm-up {st.get('warmup_ratio')}, precision {st.get('precision')}."
        )
    return lines


def _uses_tools(method: str) -> bool:
    """Whether a method acts through tools (so takes turns); a name this version does not know is taken to."""
    try:
        return method_named(method).uses_tools
    except UnknownMethod:
        return True


DEBUG_FIGURES = ("turns_per_q", "error_turn_pct", "recovered_pct")
DEBUG_COUNTS = ("episodes", "turns", "error_turns", "episodes_with_error", "recovered")


def combine_debugging(seeds: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Self-debugging over seeds: each figure mean ± std over the seeds that have it
    (None where none has), the counts behind them summed."""
    out: dict[str, Any] = {}
    for key in DEBUG_FIGURES:
        values = [s[key] for s in seeds if s[key] is not None]
        out[key] = dict(zip(("mean", "std"), mean_std(values))) if values else None
    out.update({key: sum(s[key] for s in seeds) for key in DEBUG_COUNTS})
    return out


def column_label(group: str) -> str:
    return group.capitalize() if group in ("easy", "medium", "hard", "all") else group


# ---- combining seeds -------------------------------------------------------------------------------
def build_report(eval_dirs: Sequence[str | Path]) -> dict[str, Any]:
    """The report's numbers (also written as ``report.json``)."""
    if not eval_dirs:
        raise ReportError("no evaluation directory given")
    runs = [read_eval_dir(d) for d in eval_dirs]
    benchmarks = {r["benchmark"] for r in runs}
    if len(benchmarks) > 1:
        raise ReportError(f"the directories hold different benchmarks ({sorted(benchmarks)}); report them apart")
    metrics = list(runs[0]["metrics"])
    for r in runs[1:]:
        if list(r["metrics"]) != metrics:
            raise ReportError(f"{r['path']} is scored with {list(r['metrics'])}, {runs[0]['path']} with {metrics}")
    methods = method_order([m for r in runs for m in r["records"]])
    if not methods:
        raise ReportError(f"no per-question records in {', '.join(str(d) for d in eval_dirs)}")
    summaries = [{m: summarize(recs, metrics) for m, recs in r["records"].items()} for r in runs]
    groups = ordered_groups(g for s in summaries for m in s.values() for g in m["groups"])
    columns = [*groups, ALL]

    scores: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
    for metric in metrics:
        scores[metric] = {}
        for method in methods:
            row = {}
            for col in columns:
                values = []
                for s in summaries:
                    if method not in s:
                        continue
                    if col == ALL:
                        values.append(s[method]["all"][metric])
                    elif col in s[method]["groups"]:
                        values.append(s[method]["groups"][col][metric])
                if values:
                    m, sd = mean_std(values)
                    row[col] = {"mean": m, "std": sd, "values": values}
            scores[metric][method] = row

    cost_keys = ("calls_per_q", "prompt_tokens_per_q", "completion_tokens_per_q", "latency_s_per_q")
    cost = {}
    for method in methods:
        present = [s[method] for s in summaries if method in s]
        cost[method] = {k: dict(zip(("mean", "std"), mean_std([p["cost"][k] for p in present]))) for k in cost_keys}
        cost[method]["tokens_per_q"] = dict(zip(("mean", "std"), mean_std(
            [p["cost"]["prompt_tokens_per_q"] + p["cost"]["completion_tokens_per_q"] for p in present])))
    questions = {m: [s[m]["n"] if m in s else 0 for s in summaries] for m in methods}
    halts = {m: dict(sum((Counter(s[m]["halt_reasons"]) for s in summaries if m in s), Counter())) for m in methods}
    # methods without tools take no turns; records that cannot tell count in none (see aggregate)
    debugging = {}
    for m in methods:
        per_seed = ([self_debugging(r["records"][m], r["manifest"].get("tools") or []) for r in runs
                     if m in r["records"]] if _uses_tools(m) else [])
        debugging[m] = combine_debugging([d for d in per_seed if d])

    outcomes = {}
    for m in methods:
        per_seed = [o for r in runs if m in r["records"] and (o := answer_outcomes(r["records"][m]))]
        if per_seed:
            outcomes[m] = {k: sum(o[k] for o in per_seed) for k in OUTCOMES}

    notes = []
    for r in runs:
        ids = {m: {x["id"] for x in recs} for m, recs in r["records"].items()}
        if len({frozenset(v) for v in ids.values()}) > 1:
            counts = ", ".join(f"{m}: {len(v)}" for m, v in ids.items())
            notes.append(f"{r['path']}: the methods were not run on the same questions ({counts}); "
                         "run the evaluation again to finish the missing ones")
    manifests = [r["manifest"] for r in runs]
    return {
        "benchmark": runs[0]["benchmark"],
        "metrics": metrics,
        "groups": groups,
        "columns": columns,
        "methods": methods,
        "seeds": len(runs),
        "eval_dirs": [str(r["path"]) for r in runs],
        "seed_values": [m.get("seed") for m in manifests],
        "model": sorted({str(m.get("model")) for m in manifests}),
        "run_dirs": sorted({str(m.get("run_dir")) for m in manifests}),
        "tools": manifests[0].get("tools"),
        "concurrency": sorted({m.get("concurrency") for m in manifests if m.get("concurrency")}),
        "scores": scores,
        "cost": cost,
        "questions": questions,
        "halt_reasons": halts,
        "self_debugging": debugging,
        "answer_outcomes": outcomes,
        "descriptions": {m: _description(m) for m in methods},
        "notes": notes,
        "setup": {
            "sampling": manifests[0].get("sampling") or {"temperature": manifests[0].get("temperature")},
            "options": manifests[0].get("options") or {},
            "questions": manifests[0].get("questions"),
            "data": manifests[0].get("data"),
            "split": manifests[0].get("split"),
        },
        "runs": [line for d in sorted({str(m.get("run_dir")) for m in manifests if m.get("run_dir")})
                 for line in run_lines(d)],
    }


# ---- rendering -------------------------------------------------------------------------------------
def fmt(cell: dict[str, Any] | None, digits: int = 2) -> str:
    if not cell:
        return "–"
    text = f"{cell['mean']:.{digits}f}"
    if cell.get("std") is not None:
        text += f" ± {cell['std']:.{digits}f}"
    return text


def _blocks(report: dict[str, Any], plots: dict[str, str]) -> list[tuple]:
    title = BENCHMARK_TITLES.get(report["benchmark"], report["benchmark"])
    seeds = report["seeds"]
    blocks: list[tuple] = [("h1", f"Evaluation: {title}")]
    blocks.append(("p", (
        f"Model: {', '.join(report['model'])}. Run: {', '.join(report['run_dirs'])}. "
        f"Tools offered to the tool-using methods: {', '.join(report['tools'] or [])}. "
        + (f"{seeds} seeds (evaluation directories); cells are mean ± sample standard deviation over them."
           if seeds > 1 else "One seed (one evaluation directory).")
    )))
    blocks.append(("h2", "Set-up"))
    blocks.append(("ul", setup_lines(report)))
    columns = report["columns"]
    header = ["Method", *[column_label(c) for c in columns]]
    for metric in report["metrics"]:
        label = METRIC_LABELS.get(metric, metric)
        blocks.append(("h2", f"{label} (×100)"))
        rows = [[m, *[fmt(report["scores"][metric][m].get(c)) for c in columns]] for m in report["methods"]]
        blocks.append(("table", header, rows))
    blocks.append(("p", (
        "All = the mean of the group means (as the AutoAct paper averages HotpotQA's levels). "
        "Questions per method and seed: "
        + "; ".join(f"{m}: {', '.join(map(str, n))}" for m, n in report["questions"].items()) + "."
    )))
    blocks.append(("h2", "Cost per question"))
    cost_header = ["Method", "Model calls", "Prompt tokens", "Completion tokens", "Latency (s)"]
    cost_rows = [
        [m, *[fmt(report["cost"][m][k], 1 if k != "latency_s_per_q" else 2)
              for k in ("calls_per_q", "prompt_tokens_per_q", "completion_tokens_per_q", "latency_s_per_q")]]
        for m in report["methods"]
    ]
    blocks.append(("table", cost_header, cost_rows))
    conc = report.get("concurrency") or []
    blocks.append(("p", (
        "Latency is the wall time of one question's whole episode, measured while "
        + (f"{'/'.join(map(str, conc))} questions ran at once" if conc else "other questions ran at once")
        + " on the same server, so it includes waiting for the server."
    )))
    blocks.append(("h2", "How episodes ended"))
    blocks.append(("table", ["Method", "Halt reasons"],
                   [[m, ", ".join(f"{k}: {v}" for k, v in sorted(h.items()))] for m, h in report["halt_reasons"].items()]))
    blocks.extend(_outcome_blocks(report))
    blocks.extend(_debugging_blocks(report))
    if plots:
        blocks.append(("h2", "Plots"))
        for name, rel in plots.items():
            blocks.append(("img", rel, name))
    blocks.append(("h2", "Methods"))
    blocks.append(("ul", [f"{m}: {d}" for m, d in report["descriptions"].items() if d]))
    if report["notes"]:
        blocks.append(("h2", "Notes"))
        blocks.append(("ul", report["notes"]))
    blocks.append(("p", f"Evaluation directories: {', '.join(report['eval_dirs'])}."))
    return blocks


DEBUG_LEGEND = (
    "A turn is a step of the episode that the model wrote: a tool action or Finish (for reflexion, over all its "
    "trials), or a CodeAct code block (not the Finish step CodeAct records after the block that called finish()). "
    "Turns per question: their mean. Error turns: the share of turns that were errors: an output the graph could "
    "not use (no action, an action not offered, a missing argument, a CodeAct turn without a code block), an action "
    "the environment refused, or a code block that did not run to its end (sandbox status error, timeout, "
    "cpu-limit, killed, crashed, output-limit or tool-limit); a tool's answer (not found, no more results) is not "
    "an error. Recovered: of the episodes with an error turn, the share in which a later turn came and the episode "
    "still ended with halt reason finish (in brackets: recovered of erring episodes, summed over seeds). Methods "
    "without tools take no turns; records that cannot tell (written before these figures: no trajectory, code "
    "blocks without the sandbox status, reflexion trials without their actions) count in none; – = no figure."
)


OUTCOME_LEGEND = (
    "Each episode of an open question, summed over seeds: solved (F1 = 1), partly right (0 < F1 < 1), or wrong; "
    "a wrong answer either came after a tool observation that contained the gold answer (read, not given: the "
    "agent found the evidence and did not extract the answer) or after none did (never read: retrieval failed). "
    "Episodes without steps (methods without tools, multiple choice) count in none."
)


def _outcome_blocks(report: dict[str, Any]) -> list[tuple]:
    outcomes = report.get("answer_outcomes") or {}
    if not outcomes:
        return []
    rows = [[m, *outcome_cells(counts)] for m, counts in outcomes.items()]
    return [("h2", "Where answers were lost"),
            ("table", ["Method", *[k.capitalize() for k in OUTCOMES]], rows),
            ("p", OUTCOME_LEGEND)]


def _debugging_blocks(report: dict[str, Any]) -> list[tuple]:
    rows = []
    for m, d in report["self_debugging"].items():
        recovered = fmt(d["recovered_pct"], 1)
        if d["recovered_pct"]:
            recovered += f" ({d['recovered']} of {d['episodes_with_error']})"
        rows.append([m, fmt(d["turns_per_q"]), fmt(d["error_turn_pct"], 1),
                     f"{d['episodes_with_error']} of {d['episodes']}" if d["episodes"] else "–", recovered])
    partial = [f"{m}: {d['episodes']} of {sum(report['questions'][m])}"
               for m, d in report["self_debugging"].items() if 0 < d["episodes"] < sum(report["questions"][m])]
    return [
        ("h2", "Self-debugging"),
        ("table", ["Method", "Turns per question", "Error turns (%)", "Episodes with an error", "Recovered (%)"], rows),
        ("p", DEBUG_LEGEND + (f" Questions counted (the others' records cannot tell): {'; '.join(partial)}."
                              if partial else "")),
    ]


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(blocks: list[tuple]) -> str:
    out: list[str] = []
    for block in blocks:
        kind = block[0]
        if kind == "h1":
            out.append(f"# {block[1]}")
        elif kind == "h2":
            out.append(f"## {block[1]}")
        elif kind == "p":
            out.append(block[1])
        elif kind == "table":
            header, rows = block[1], block[2]
            out.append("| " + " | ".join(map(_md_cell, header)) + " |")
            out.append("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")
            out.extend("| " + " | ".join(map(_md_cell, row)) + " |" for row in rows)
        elif kind == "img":
            out.append(f"![{block[2]}]({block[1]})")
        elif kind == "ul":
            out.extend(f"- {item}" for item in block[1])
        out.append("")
    return "\n".join(out)


def render_html(blocks: list[tuple], title: str) -> str:
    e = html.escape
    body: list[str] = []
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2"):
            body.append(f"<{kind}>{e(block[1])}</{kind}>")
        elif kind == "p":
            body.append(f"<p>{e(block[1])}</p>")
        elif kind == "table":
            header, rows = block[1], block[2]
            head = "".join(f"<th>{e(str(h))}</th>" for h in header)
            lines = "".join("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in row) + "</tr>" for row in rows)
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{lines}</tbody></table>")
        elif kind == "img":
            body.append(f'<figure><img src="{e(block[1])}" alt="{e(block[2])}"><figcaption>{e(block[2])}</figcaption></figure>')
        elif kind == "ul":
            body.append("<ul>" + "".join(f"<li>{e(str(i))}</li>" for i in block[1]) + "</ul>")
    style = (
        "body{font-family:system-ui,sans-serif;max-width:60em;margin:2em auto;padding:0 1em;color:#222}"
        "table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:.3em .7em}"
        "td:not(:first-child){text-align:right}th{background:#f3f3f3}img{max-width:100%}"
    )
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>'
        f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def _plots(report: dict[str, Any], out_dir: Path) -> dict[str, str]:
    from autoact.eval import plots  # matplotlib: loaded only when a report draws

    metric = report["metrics"][0]
    label = METRIC_LABELS.get(metric, metric)
    methods = report["methods"]
    cells = {
        m: {column_label(c): (v["mean"], v["std"]) for c, v in report["scores"][metric][m].items()} for m in methods
    }
    columns = [column_label(c) for c in report["columns"]]
    title = BENCHMARK_TITLES.get(report["benchmark"], report["benchmark"])
    score_path = plots.score_by_group(methods, columns, cells, f"{label} (×100)",
                                      out_dir / PLOTS_DIR / "score_by_group.png", f"{title}: {label} by method and group")
    points = {}
    for m in methods:
        all_cell = report["scores"][metric][m].get(ALL) or {"mean": 0.0, "std": None}
        tokens = report["cost"][m]["tokens_per_q"]
        points[m] = {"x": tokens["mean"], "y": all_cell["mean"], "x_err": tokens["std"], "y_err": all_cell["std"]}
    cost_path = plots.cost_vs_score(points, "tokens per question (prompt + completion)", f"{label} All (×100)",
                                    out_dir / PLOTS_DIR / "cost_vs_score.png", f"{title}: cost against score")
    return {
        "Score by method and group": str(score_path.relative_to(out_dir)),
        "Cost against score": str(cost_path.relative_to(out_dir)),
    }


def write_report(eval_dirs: Sequence[str | Path], out_dir: str | Path) -> dict[str, Path]:
    """Write ``report.md``, ``report.html``, ``report.json`` and the plots into ``out_dir``;
    returns their paths."""
    report = build_report(eval_dirs)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = _plots(report, out_dir)
    blocks = _blocks(report, plots)
    title = f"Evaluation: {BENCHMARK_TITLES.get(report['benchmark'], report['benchmark'])}"
    paths = {
        "markdown": atomic_write_text(out_dir / REPORT_MD, render_markdown(blocks)),
        "html": atomic_write_text(out_dir / REPORT_HTML, render_html(blocks, title)),
        "json": atomic_write_text(out_dir / REPORT_JSON, json.dumps(report, indent=2)),
    }
    for name, rel in plots.items():
        paths[name] = out_dir / rel
    return paths
