"""``autoact report``: tables recomputed from per-question records, mean ± std over
seeds, cost, Markdown + HTML + plots, and clear refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autoact.app.cli import main
from autoact.eval.report import ReportError, build_report, fmt, read_records, write_report

from eval_fakes import code, finish, step

PNG = b"\x89PNG\r\n\x1a\n"


def _record(qid: str, group: str, f1: float, em: float, completion: int = 20, latency: float = 2.0) -> dict:
    return {"id": qid, "group": group, "prediction": "x", "gold": "y", "scores": {"f1": f1, "em": em, "reward": f1},
            "reward": f1, "tokens": {"prompt": 200, "completion": completion}, "calls": 4,
            "latency_s": latency, "halt_reason": "finish", "trajectory": []}


def _eval_dir(root: Path, name: str, methods: dict[str, list[dict]], benchmark: str = "hotpotqa",
              seed: int = 0) -> Path:
    d = root / name
    d.mkdir(parents=True)
    (d / "eval.json").write_text(json.dumps({"benchmark": benchmark, "seed": seed, "model": "embedded",
                                             "run_dir": "runs/x", "tools": ["Retrieve"], "concurrency": 4}))
    for method, records in methods.items():
        (d / f"{method}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return d


@pytest.fixture
def seeds(tmp_path: Path) -> list[Path]:
    # seed 0: react easy F1 (1 + 0)/2 = 50, medium 20 -> All 35; autoact easy 100, medium 40 -> All 70
    s0 = _eval_dir(tmp_path, "seed0", {
        "react": [_record("a", "easy", 1.0, 1.0), _record("b", "easy", 0.0, 0.0), _record("c", "medium", 0.2, 0.0)],
        "autoact": [_record("a", "easy", 1.0, 1.0, 40), _record("b", "easy", 1.0, 1.0, 40),
                    _record("c", "medium", 0.4, 0.0, 40)],
    })
    # seed 1: react easy 100, medium 40 -> All 70; autoact easy 50, medium 40 -> All 45
    s1 = _eval_dir(tmp_path, "seed1", {
        "react": [_record("a", "easy", 1.0, 1.0), _record("b", "easy", 1.0, 0.0), _record("c", "medium", 0.4, 0.0)],
        "autoact": [_record("a", "easy", 1.0, 1.0, 60), _record("b", "easy", 0.0, 0.0, 60),
                    _record("c", "medium", 0.4, 0.0, 60)],
    }, seed=1)
    return [s0, s1]


def test_cells_are_means_over_records_then_mean_and_std_over_seeds(seeds):
    report = build_report(seeds)
    assert report["methods"] == ["react", "autoact"]  # baselines first, as the paper's tables
    assert report["columns"] == ["easy", "medium", "All"]
    react = report["scores"]["f1"]["react"]
    assert react["easy"]["values"] == pytest.approx([50.0, 100.0])
    assert react["easy"]["mean"] == pytest.approx(75.0) and react["easy"]["std"] == pytest.approx(35.3553, abs=1e-3)
    assert react["All"]["values"] == pytest.approx([35.0, 70.0])
    assert report["scores"]["em"]["react"]["easy"]["values"] == pytest.approx([50.0, 50.0])
    autoact = report["scores"]["f1"]["autoact"]
    assert autoact["All"]["values"] == pytest.approx([70.0, 45.0])
    assert report["cost"]["autoact"]["completion_tokens_per_q"]["mean"] == pytest.approx(50.0)
    assert report["cost"]["react"]["calls_per_q"]["mean"] == 4.0
    assert report["questions"] == {"react": [3, 3], "autoact": [3, 3]}
    assert report["seeds"] == 2 and report["notes"] == []


def test_report_files_plots_and_the_table_text(seeds, tmp_path):
    paths = write_report(seeds, tmp_path / "report")
    md = paths["markdown"].read_text()
    assert "| react | 75.00 ± 35.36 | 30.00 ± 14.14 | 52.50 ± 24.75 |" in md
    assert "## Cost per question" in md and "Reflexion" not in md
    html = paths["html"].read_text()
    assert html.startswith("<!DOCTYPE html>") and "<td>75.00 ± 35.36</td>" in html
    for key in ("Score by method and group", "Cost against score"):
        assert paths[key].read_bytes()[:8] == PNG and paths[key].stat().st_size > 5000
        assert str(paths[key].relative_to(tmp_path / "report")) in md
    data = json.loads(paths["json"].read_text())
    assert data["scores"]["f1"]["autoact"]["All"]["mean"] == pytest.approx(57.5)


def test_one_seed_has_no_std(seeds):
    report = build_report(seeds[:1])
    cell = report["scores"]["f1"]["react"]["All"]
    assert cell["std"] is None and fmt(cell) == "35.00"


def test_missing_questions_are_flagged(tmp_path):
    d = _eval_dir(tmp_path, "x", {"react": [_record("a", "easy", 1, 1), _record("b", "easy", 0, 0)],
                                  "cot": [_record("a", "easy", 1, 1)]})
    assert "not run on the same questions" in build_report([d])["notes"][0]


def test_refusals(tmp_path, seeds):
    with pytest.raises(ReportError, match="no eval.json"):
        build_report([tmp_path / "nowhere"])
    other = _eval_dir(tmp_path, "sqa", {"cot": [{**_record("a", "grade1-4", 0, 0), "scores": {"acc": 1.0}}]},
                      benchmark="scienceqa")
    with pytest.raises(ReportError, match="different benchmarks"):
        build_report([seeds[0], other])
    empty = _eval_dir(tmp_path, "empty", {})
    with pytest.raises(ReportError, match="no per-question records"):
        build_report([empty])


def test_a_torn_last_line_is_skipped(tmp_path):
    path = tmp_path / "react.jsonl"
    path.write_text(json.dumps(_record("a", "easy", 1, 1)) + "\n" + '{"id": "b", "gro')
    assert [r["id"] for r in read_records(path)] == ["a"]


def test_report_command(seeds, tmp_path, capsys):
    assert main(["report", *map(str, seeds), "--out", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert "report.md" in out and "report.html" in out and (tmp_path / "r" / "plots" / "cost_vs_score.png").is_file()


def test_report_states_the_set_up(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "manifest.json").write_text(json.dumps({
        "synthesis": {"instances": "self-instruct", "samples": 2, "sample_temperature": 0.9, "max_steps": 4,
                      "min_reward": 1.0, "rationalize": False},
        "stages": {"self-instruct": {"instances": 40, "separation": {"excluded_paragraphs": 23}},
                   "tools": {"selected": ["Retrieve", "Lookup"]},
                   "filter": {"total": 80, "kept": 31, "by_kind": {"person": {"questions": 9, "kept": 2},
                                                                   "year": {"questions": 8, "kept": 7}}}},
    }))
    (run / "learning.json").write_text(json.dumps({"rounds": [
        {"round": 1, "instances": 40, "instances_solved": 31, "newly_solved": 31, "kept": 31,
         "records": {"plan": 70, "tool": 70, "reflect": 31}, "adapters": ["plan", "tool", "reflect"]},
        {"round": 2, "instances": 40, "instances_solved": 35, "newly_solved": 4, "kept": 35,
         "records": {"plan": 80, "tool": 80, "reflect": 35}, "adapters": ["plan-r2", "tool-r2", "reflect-r2"]}]}))
    d = tmp_path / "seed0"
    d.mkdir()
    (d / "eval.json").write_text(json.dumps({
        "benchmark": "hotpotqa", "seed": 0, "model": "embedded", "run_dir": str(run), "tools": ["Retrieve"],
        "questions": 2, "data": ["easy.jsonl"], "options": {"max_steps": 4},
        "sampling": {"temperature": 0.5, "top_p": 0.75, "top_k": 40, "max_tokens": 128}}))
    for method in ("react", "autoact", "autoact-r2"):
        (d / f"{method}.jsonl").write_text(json.dumps(_record("a", "easy", 1.0, 1.0)) + "\n")
    paths = write_report([d], tmp_path / "report")
    text = paths["markdown"].read_text()
    setup = text.split("## Set-up")[1].split("##")[0]
    assert "offline corpus" in setup and "live Wikipedia" in setup
    assert "temperature 0.5, top_p 0.75, top_k 40" in setup and "seeds 0" in setup
    assert "official HotpotQA script" in setup
    assert "40 self-instructed questions (none written from the 23 paragraphs" in setup
    assert "80 trajectories synthesized" in setup and "31 kept at reward >= 1.0" in setup
    assert "Round 2: 35 of 40 synthesized questions solved (new this round: 4)" in setup
    assert "Kept per kind of question (kept of tried): person 2 of 9, year 7 of 8." in setup
    assert build_report([d])["methods"] == ["react", "autoact", "autoact-r2"]
    assert "autoact-r2: group planning with the adapters retrained after self-training round 2" in text


def _episode(qid: str, trajectory: list[dict], halt: str = "finish") -> dict:
    return {**_record(qid, "easy", 1.0, 1.0), "trajectory": trajectory, "halt_reason": halt}


def test_self_debugging_per_method_in_the_table_and_the_json(tmp_path):
    old = _record("a", "easy", 1.0, 1.0)
    del old["trajectory"]  # written before trajectories were kept
    d = _eval_dir(tmp_path, "x", {
        "codeact": [
            _episode("a", [code("print(pages)", "error"), code("print(page)", "ok"), code("finish('x')", "ok"),
                           finish("x")]),  # a traceback, fixed, then the answer: recovered
            _episode("b", [code("1/0", "error"), code("")], "parse_error"),  # errors, no answer
        ],
        "react": [
            _episode("a", [step("Wikipedia", "Paris"), step("Retrieve", "Paris"), finish("x")]),  # an invalid action
            _episode("b", [step("Retrieve", "Paris"), finish("x")]),
        ],
        "cot": [_episode("a", [finish("x")]), _episode("b", [finish("x")])],  # no tools: no turns
        "autoact": [old, {**old, "id": "b"}],
    })
    sd = build_report([d])["self_debugging"]
    assert sd["codeact"]["turns_per_q"]["mean"] == 2.5 and sd["codeact"]["error_turn_pct"]["mean"] == 60.0
    assert (sd["codeact"]["episodes_with_error"], sd["codeact"]["recovered"]) == (2, 1)
    assert sd["codeact"]["recovered_pct"] == {"mean": 50.0, "std": None}
    assert sd["react"]["error_turn_pct"]["mean"] == 20.0 and sd["react"]["recovered_pct"]["mean"] == 100.0
    for method in ("cot", "autoact"):
        assert sd[method]["turns_per_q"] is None and sd[method]["episodes"] == 0
    paths = write_report([d], tmp_path / "report")
    md = paths["markdown"].read_text()
    table = md.split("## Self-debugging")[1]
    assert "| Method | Turns per question | Error turns (%) | Episodes with an error | Recovered (%) |" in table
    assert "| codeact | 2.50 | 60.0 | 2 of 2 | 50.0 (1 of 2) |" in table
    assert "| react | 2.50 | 20.0 | 1 of 2 | 100.0 (1 of 1) |" in table
    assert "| cot | – | – | – | – |" in table and "| autoact | – | – | – | – |" in table
    assert "not the Finish step CodeAct records" in table
    assert "<td>50.0 (1 of 2)</td>" in paths["html"].read_text()
    assert json.loads(paths["json"].read_text())["self_debugging"]["react"]["error_turns"] == 1


def test_self_debugging_over_seeds_and_records_that_cannot_tell(tmp_path):
    clean = [step("Retrieve", "Paris"), finish("x")]
    s0 = _eval_dir(tmp_path, "s0", {"react": [_episode("a", [step("", ""), *clean]), _episode("b", clean)]})
    # seed 1: one record from before code statuses were kept counts in none
    s1 = _eval_dir(tmp_path, "s1", {"react": [_episode("a", clean), _episode("b", [code("print(1)"), *clean])]}, seed=1)
    report = build_report([s0, s1])
    react = report["self_debugging"]["react"]
    assert react["turns_per_q"]["mean"] == pytest.approx(2.25)  # seed 0: 2.5, seed 1: 2.0
    assert react["error_turn_pct"]["mean"] == pytest.approx(10.0)  # 20 and 0
    assert react["error_turn_pct"]["std"] == pytest.approx(14.1421, abs=1e-3)
    assert react["recovered_pct"] == {"mean": 100.0, "std": None}  # only seed 0 had an error
    assert (react["episodes"], react["turns"], react["error_turns"], react["recovered"]) == (3, 7, 1, 1)
    md = write_report([s0, s1], tmp_path / "report")["markdown"].read_text()
    assert "| react | 2.25 ± 0.35 | 10.0 ± 14.1 | 1 of 3 | 100.0 (1 of 1) |" in md
    assert "Questions counted (the others' records cannot tell): react: 3 of 4." in md


def _qa(qid: str, f1: float, observations: list[str], gold: str = "Ida Brann") -> dict:
    steps = [{"thought": "t", "action": "Retrieve", "argument": "x", "observation": o} for o in observations]
    return {**_record(qid, "easy", f1, float(f1 == 1.0)), "gold": gold,
            "trajectory": [*steps, {"thought": "t", "action": "Finish", "argument": "p", "observation": ""}]}


def test_answer_outcome_separates_extraction_from_retrieval_failures():
    from autoact.eval.aggregate import answer_outcome, answer_outcomes

    founded = "Velmora was founded in 1412 by the navigator Ida Brann."
    assert answer_outcome(_qa("a", 1.0, [founded])) == "solved"
    assert answer_outcome(_qa("b", 0.5, [])) == "partly right"
    assert answer_outcome(_qa("c", 0.0, ["Nothing here.", founded])) == "read, not given"
    assert answer_outcome(_qa("d", 0.0, ["Velmora is a town."])) == "never read"
    assert answer_outcome(_qa("e", 0.0, ["Ida Branner was a sailor."])) == "never read"  # whole words only
    assert answer_outcome({**_qa("f", 0.0, [founded]), "choices": ["a", "b"]}) is None  # multiple choice
    assert answer_outcome({"id": "g", "gold": "x", "scores": {"f1": 0.0}}) is None  # no steps
    reflexion = {"id": "h", "gold": "Ida Brann", "scores": {"f1": 0.0},
                 "trials": [{"actions": [{"observation": "no"}]}, {"actions": [{"observation": founded}]}]}
    assert answer_outcome(reflexion) == "read, not given"
    assert answer_outcomes([_qa("a", 1.0, []), _qa("c", 0.0, [founded])]) == {
        "solved": 1, "partly right": 0, "read, not given": 1, "never read": 0}
    assert answer_outcomes([{"id": "g"}]) is None


def test_report_says_where_answers_were_lost_summed_over_seeds(tmp_path):
    read = "Velmora was founded by Ida Brann."
    s0 = _eval_dir(tmp_path, "s0", {"react": [_qa("a", 1.0, [read]), _qa("b", 0.0, [read])]})
    s1 = _eval_dir(tmp_path, "s1", {"react": [_qa("a", 0.0, ["Velmora."]), _qa("b", 0.0, [read])]}, seed=1)
    report = build_report([s0, s1])
    assert report["answer_outcomes"]["react"] == {"solved": 1, "partly right": 0, "read, not given": 2,
                                                  "never read": 1}
    text = write_report([s0, s1], tmp_path / "out")["markdown"].read_text()
    assert "## Where answers were lost" in text
    assert "| react | 1 (25 %) | 0 (0 %) | 2 (50 %) | 1 (25 %) |" in text
