"""Text actions or code actions? ReAct vs CodeAct, zero-shot and after fine-tuning.

    python benchmarks/action_space.py [--model embedded] [--seeds 0] [--benchmarks demo,hotpotqa]
        [--hotpotqa-limit 10] [--out runs/bench-action-space]

For each benchmark the learning pipeline (``autoact learn``) runs twice on the same
model, instances and tools:

- ``text/``: the meta-agent acts with ``Retrieve[...]`` text actions; its kept
  trajectories train the plan, tool and reflect adapters; evaluated as ``react``
  (zero-shot) and ``autoact`` (fine-tuned);
- ``code/``: the meta-agent acts with Python blocks (CodeAct) on the instances and
  the tool set the text run made (copied before it starts); its kept trajectories
  train one ``codeact`` adapter; evaluated as ``codeact`` (zero-shot) and
  ``codeact-ft`` (fine-tuned).

Both evaluate the same held-out questions (demo: the 20 test questions; hotpotqa:
``--hotpotqa-limit`` per level of the shared easy and medium files) once per
sampling seed. The table gives F1 and EM (All, mean over seeds), turns and
completion tokens per question, the share of turns that raised an error (the
report's self-debugging figures), and the ratios CodeAct ÷ ReAct (zero-shot) and
codeact-ft ÷ codeact. Runs resume: run it again with the same ``--out``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from autoact.app.pipeline import PipelineConfig, run_pipeline
from autoact.settings import load_settings

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
#: What the code run takes over from the text run, so that both solve the same instances with the same tools.
SHARED_FILES = ("instances.jsonl", "self_instruct_rounds.jsonl", "tools.json")
ROWS = (("react", "text"), ("codeact", "code"), ("autoact", "text"), ("codeact-ft", "code"))


def data_files(name: str) -> list[str] | None:
    if name != "hotpotqa":
        return None
    files = [SHARED / "hotpotqa" / "easy.jsonl", SHARED / "hotpotqa" / "medium.jsonl"]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise SystemExit(f"shared HotpotQA data not found: {missing}")
    return [str(f) for f in files]


def run_space(name: str, space: str, args: argparse.Namespace) -> Path:
    settings = load_settings(model=args.model)
    learn = settings.learn.model_copy(update={
        "rounds": 1, "eval_seeds": args.seeds, "eval_limit": args.hotpotqa_limit if name == "hotpotqa" else None,
    })
    run_dir = Path(args.out) / name / space
    if space == "code":
        text_dir = Path(args.out) / name / "text"
        run_dir.mkdir(parents=True, exist_ok=True)
        for file in SHARED_FILES:
            if (text_dir / file).is_file() and not (run_dir / file).is_file():
                shutil.copy2(text_dir / file, run_dir / file)
    methods = ("react", "autoact") if space == "text" else ("codeact", "codeact-ft")
    config = PipelineConfig(task=name, data=data_files(name), learn=learn, methods=methods,
                            action_space=space)
    run_pipeline(settings.model_copy(update={"run_dir": run_dir}), config)
    return run_dir


def method_figures(run_dir: Path, method: str) -> dict | None:
    """F1/EM (All, mean over seeds), turns and completion tokens per question."""
    report = json.loads((run_dir / "report" / "report.json").read_text())
    if method not in report["methods"]:
        return None
    figures = {}
    for metric in report["metrics"]:
        cell = report["scores"][metric].get(method, {}).get("All")
        figures[metric] = cell["mean"] if cell else None
    figures["tokens"] = (report["cost"].get(method, {}).get("completion_tokens_per_q") or {}).get("mean")
    debugging = report.get("self_debugging", {}).get(method) or {}
    figures["turns"] = (debugging.get("turns_per_q") or {}).get("mean")  # the report's definition of a turn
    figures["error_turn_pct"] = (debugging.get("error_turn_pct") or {}).get("mean")
    return figures


def markdown(results: dict[str, dict[str, dict | None]], args: argparse.Namespace) -> str:
    lines = [f"Model: {args.model}; seeds {', '.join(map(str, args.seeds))}. F1/EM: All ×100, mean over seeds; "
             "turns and completion tokens per question.", "",
             "| benchmark | method | F1 | EM | turns | error turns % | tokens |", "|---|---|---:|---:|---:|---:|---:|"]
    ratios = []
    for name, rows in results.items():
        for method, _ in ROWS:
            f = rows.get(method)
            if not f:
                lines.append(f"| {name} | {method} | – | – | – | – | – |")
                continue
            f1, em = f.get("f1"), f.get("em")
            lines.append(f"| {name} | {method} | {_num(f1)} | {_num(em)} | {_num(f['turns'], 2)} | "
                         f"{_num(f['error_turn_pct'])} | {_num(f['tokens'], 0)} |")

        def ratio(a: str, b: str) -> str:
            x, y = (rows.get(a) or {}).get("f1"), (rows.get(b) or {}).get("f1")
            return f"{x / y:.2f}×" if x is not None and y else "–"

        ratios.append(f"- {name}: codeact ÷ react {ratio('codeact', 'react')}, codeact-ft ÷ codeact "
                      f"{ratio('codeact-ft', 'codeact')}, codeact-ft ÷ autoact {ratio('codeact-ft', 'autoact')} (F1)")
    return "\n".join([*lines, "", *ratios]) + "\n"


def _num(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--benchmarks", default="demo,hotpotqa")
    parser.add_argument("--hotpotqa-limit", type=int, default=10, help="HotpotQA questions per level")
    parser.add_argument("--out", default="runs/bench-action-space")
    args = parser.parse_args(argv)
    args.seeds = [int(s) for s in args.seeds.split(",")]
    results: dict[str, dict[str, dict | None]] = {}
    for name in [b.strip() for b in args.benchmarks.split(",") if b.strip()]:
        start = time.perf_counter()
        dirs = {space: run_space(name, space, args) for space in ("text", "code")}
        results[name] = {method: method_figures(dirs[space], method) for method, space in ROWS}
        print(json.dumps({"benchmark": name, "seconds": round(time.perf_counter() - start, 1),
                          "figures": results[name]}, default=str), flush=True)
    table = markdown(results, args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text(table)
    (out / "table.json").write_text(json.dumps(results, indent=2, default=str))
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
