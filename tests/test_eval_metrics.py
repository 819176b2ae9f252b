"""Scoring of evaluation records and aggregation, against hand-computed cases.

A record's scores come from the task's scorer (``question_record``); the table's
cells are per-group means ×100 and All is the mean of the groups (the AutoAct
paper's average over HotpotQA's levels), not the mean over questions.
"""

from __future__ import annotations

import pytest

from autoact.eval.aggregate import (
    ALL,
    cost,
    group_of,
    mean_std,
    metrics_for,
    ordered_groups,
    record_turns,
    self_debugging,
    summarize,
    turn_errors,
)
from autoact.metrics import (
    exact_match,
    f1_score,
    normalize_answer,
    normalize_answer_lenient,
    qa_scores,
)
from autoact.eval.runner import question_record, usage_totals
from autoact.prompts import builders
from autoact.tools import Task, TaskInstance
from autoact.tools.corpus import Corpus

from eval_fakes import code, finish, step


def _task(instances: list[TaskInstance]) -> Task:
    return Task("custom", "test", instances, Corpus([], name="empty"), ["Calculator"])


def _record(task: Task, inst: TaskInstance, answer: str | None, usage: dict | None = None) -> dict:
    state = {"answer": answer, "halt_reason": "finish", "trajectory": [], "usage": usage or {}}
    return question_record("m", task, inst, state, 1.5)


QA = TaskInstance("q1", "Which river runs through Paris?", "the Seine", meta={"level": "easy"})
YES = TaskInstance("q2", "Are both rivers in France?", "yes", meta={"level": "medium"})
MC = TaskInstance("q3", "Which is a mammal?\nOptions: (A) shark (B) dolphin (C) trout", "dolphin",
                  choices=["shark", "dolphin", "trout"], meta={"answer_index": 1, "level": "grade1-4"})


@pytest.mark.parametrize(
    "answer,f1,em",
    [
        ("Seine", 1.0, 1.0),  # the article and case are normalised away
        ("The SEINE!", 1.0, 1.0),  # punctuation too
        ("Seine river", 2 / 3, 0.0),  # P = 1/2, R = 1 -> F1 = 2/3
        ("the river Loire", 0.0, 0.0),
        (None, 0.0, 0.0),  # no answer scores as an empty one
    ],
)
def test_open_answers_are_scored_by_token_f1_and_em(answer, f1, em):
    record = _record(_task([QA]), QA, answer)
    assert record["scores"]["f1"] == pytest.approx(f1)
    assert record["scores"]["em"] == em
    assert record["reward"] == pytest.approx(f1)
    assert record["prediction"] == answer and record["gold"] == "the Seine"


@pytest.mark.parametrize("answer,f1", [("yes", 1.0), ("Yes.", 1.0), ("yes they are", 0.0), ("no", 0.0)])
def test_yes_no_answers_get_no_partial_credit(answer, f1):
    assert _record(_task([YES]), YES, answer)["scores"]["f1"] == f1


@pytest.mark.parametrize(
    "answer,acc,choice",
    [
        ("B", 1.0, 1), ("(b)", 1.0, 1), ("B. dolphin", 1.0, 1),  # by letter
        ("dolphin", 1.0, 1), ("The Dolphin.", 1.0, 1),  # by text
        ("A", 0.0, 0), ("shark", 0.0, 0),
        ("a whale", 0.0, None),  # names no option
    ],
)
def test_multiple_choice_by_letter_and_by_text(answer, acc, choice):
    scores = _record(_task([MC]), MC, answer)["scores"]
    assert scores["acc"] == acc and scores["choice"] == choice


# ---- HotpotQA's official F1 / EM (hotpot_evaluate_v1.py) on tricky pairs --------------
# Columns: prediction, gold, official (F1, EM, precision, recall), lenient (F1, EM).
# Official normalisation: lower -> delete string.punctuation (ASCII only) -> \b(a|an|the)\b -> " "
# -> collapse whitespace. Lenient adds NFKC and deletes ‘ ’ “ ” – — … as well.
TRICKY = [
    # articles
    ("The Beatles", "Beatles", 1.0, 1.0, 1.0, 1.0, 1.0, 1.0),
    ("an apple", "apple", 1.0, 1.0, 1.0, 1.0, 1.0, 1.0),
    # "the" inside a word stays: "theatre" vs "atre" share no token
    ("theatre", "atre", 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
    ("A theatre", "theatre", 1.0, 1.0, 1.0, 1.0, 1.0, 1.0),
    # punctuation goes before articles: "the-end" -> "theend", which has no article left
    ("the-end", "end", 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
    # ASCII punctuation: "u.s." -> "us"; "rock 'n' roll" -> "rock n roll"
    ("U.S.", "US", 1.0, 1.0, 1.0, 1.0, 1.0, 1.0),
    ("Rock 'n' roll", "rock n roll", 1.0, 1.0, 1.0, 1.0, 1.0, 1.0),
    # Unicode punctuation is kept officially: [rock, ’n’, roll] vs [rock, n, roll], common 2,
    # P = R = 2/3 -> F1 2/3; lenient deletes ’ -> identical
    ("Rock ’n’ roll", "Rock 'n' roll", 2 / 3, 0.0, 2 / 3, 2 / 3, 1.0, 1.0),
    # en dash kept: "jay–z" vs "jayz" -> no common token; lenient -> "jayz" both
    ("Jay–Z", "Jay-Z", 0.0, 0.0, 0.0, 0.0, 1.0, 1.0),
    # curly quotes kept: ["“hello”"] vs ["hello"]
    ("“Hello”", "Hello", 0.0, 0.0, 0.0, 0.0, 1.0, 1.0),
    # ellipsis kept: ["wait…"] vs ["wait"]
    ("wait…", "wait", 0.0, 0.0, 0.0, 0.0, 1.0, 1.0),
    # no NFKC officially: full-width "ＵＳＡ" lower-cases to "ｕｓａ" != "usa"; NFKC -> "usa"
    ("ＵＳＡ", "USA", 0.0, 0.0, 0.0, 0.0, 1.0, 1.0),
    # numbers: the comma is punctuation, "1,000" -> "1000"
    ("1,000", "1000", 1.0, 1.0, 1.0, 1.0, 1.0, 1.0),
    # ["1000"] vs ["1", "000"]: no common token
    ("1,000", "1 000", 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
    # yes / no / noanswer
    ("yes", "Yes.", 1.0, 1.0, 1.0, 1.0, 1.0, 1.0),
    ("yes", "no", 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
    # the gold is "yes" and the prediction differs: 0, not the token overlap P=1/3, R=1
    ("yes it is", "yes", 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
    # the prediction is "yes" and the gold differs: 0, not P=1, R=1/3
    ("yes", "yes it is", 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
    ("noanswer", "Paris", 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
    ("NoAnswer.", "noanswer", 1.0, 1.0, 1.0, 1.0, 1.0, 1.0),
    # "no answer" != "noanswer" and the gold is "noanswer"
    ("No answer", "noanswer", 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
    # empty prediction: no common token
    ("", "Paris", 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
    # both normalise to "": no common token -> F1 0, yet "" == "" -> EM 1 (official)
    ("", "", 0.0, 1.0, 0.0, 0.0, 0.0, 1.0),
    ("The.", "a", 0.0, 1.0, 0.0, 0.0, 0.0, 1.0),
    # partial overlap: [river, seine, in, paris] vs [seine]: P = 1/4, R = 1 -> F1 = (1/2)/(5/4) = 2/5
    ("the river Seine in Paris", "Seine", 0.4, 0.0, 0.25, 1.0, 0.4, 0.0),
    # [seine] vs [river, seine]: P = 1, R = 1/2 -> F1 = 1/(3/2) = 2/3
    ("Seine", "river Seine", 2 / 3, 0.0, 1.0, 0.5, 2 / 3, 0.0),
    # multiset: [new, new, york] vs [new, york] share new x1 + york x1 = 2: P = 2/3, R = 1 -> F1 = 0.8
    ("new new york", "New York", 0.8, 0.0, 2 / 3, 1.0, 0.8, 0.0),
]


@pytest.mark.parametrize("pred,gold,f1,em,precision,recall,lenient_f1,lenient_em", TRICKY)
def test_official_hotpotqa_f1_em_on_tricky_pairs(pred, gold, f1, em, precision, recall, lenient_f1, lenient_em):
    assert f1_score(pred, gold) == pytest.approx(f1)
    assert exact_match(pred, gold) == em
    assert qa_scores(pred, gold) == {"reward": pytest.approx(f1), "f1": pytest.approx(f1), "em": em,
                                     "precision": pytest.approx(precision), "recall": pytest.approx(recall)}
    assert f1_score(pred, gold, lenient=True) == pytest.approx(lenient_f1)
    assert exact_match(pred, gold, lenient=True) == lenient_em
    lenient = qa_scores(pred, gold, lenient=True)
    assert lenient["f1"] == pytest.approx(lenient_f1) and lenient["em"] == lenient_em


@pytest.mark.parametrize(
    "text,official,lenient",
    [
        ("The Beatles", "beatles", "beatles"),
        ("A theatre, the end", "theatre end", "theatre end"),
        ("the-end", "theend", "theend"),  # punctuation first, then articles
        ("Rock ’n’ roll", "rock ’n’ roll", "rock n roll"),
        ("“Hi”—there…", "“hi”—there…", "hithere"),
        ("ＵＳＡ", "ｕｓａ", "usa"),
        ("  1,000\tUSD ", "1000 usd", "1000 usd"),
        (None, "", ""),
    ],
)
def test_normalize_official_and_lenient(text, official, lenient):
    assert normalize_answer(text) == official
    assert normalize_answer_lenient(text) == lenient


def test_lenient_is_never_the_default():
    assert f1_score("Rock ’n’ roll", "Rock 'n' roll") == pytest.approx(2 / 3)
    assert f1_score("Rock ’n’ roll", "Rock 'n' roll", lenient=False) == pytest.approx(2 / 3)
    assert f1_score("Rock ’n’ roll", "Rock 'n' roll", lenient=True) == 1.0


def test_best_over_gold_aliases():
    assert f1_score("Seine", ["River Seine", "Seine"]) == 1.0
    assert exact_match("Seine", ["River Seine", "Seine"]) == 1.0
    # precision and recall come from the alias with the best F1: [seine] vs [river, seine]
    s = qa_scores("Seine", ["Loire", "River Seine"])
    assert s["f1"] == pytest.approx(2 / 3) and s["precision"] == 1.0 and s["recall"] == 0.5 and s["em"] == 0.0
    # an alias typed with a curly apostrophe only matches leniently
    assert exact_match("rock 'n' roll", ["Rock ’n’ roll"]) == 0.0
    assert exact_match("rock 'n' roll", ["Rock ’n’ roll"], lenient=True) == 1.0
    with pytest.raises(ValueError):
        f1_score("x", [])


def test_record_sums_usage_over_roles():
    usage = {
        "plan": {"calls": 3, "prompt_tokens": 900, "completion_tokens": 60, "prompt_chars": 2700},
        "tool": {"calls": 3, "prompt_tokens": 800, "completion_tokens": 15, "prompt_chars": 2400},
        "reflect": {"calls": 1, "prompt_tokens": 400, "completion_tokens": 25, "prompt_chars": 1200},
    }
    assert usage_totals(usage) == (7, 2100, 100)
    record = _record(_task([QA]), QA, "Seine", usage)
    assert record["tokens"] == {"prompt": 2100, "completion": 100} and record["calls"] == 7
    assert record["latency_s"] == 1.5 and record["group"] == "easy"


def _rec(group: str, f1: float, em: float, calls: int = 2, prompt: int = 100, completion: int = 10,
         latency: float = 1.0, halt: str = "finish") -> dict:
    return {"group": group, "scores": {"f1": f1, "em": em}, "calls": calls,
            "tokens": {"prompt": prompt, "completion": completion}, "latency_s": latency, "halt_reason": halt}


def test_per_level_means_and_all_is_the_mean_of_the_levels():
    records = [
        _rec("easy", 1.0, 1.0), _rec("easy", 0.5, 0.0),  # easy: F1 75, EM 50
        _rec("medium", 0.0, 0.0),  # medium: 0, 0
        _rec("hard", 0.25, 0.0), _rec("hard", 0.25, 0.0), _rec("hard", 1.0, 1.0, halt="max_steps"),  # hard: 50, 33.3
    ]
    s = summarize(records, ("f1", "em"))
    assert list(s["groups"]) == ["easy", "medium", "hard"]
    assert s["groups"]["easy"] == {"n": 2, "f1": pytest.approx(75.0), "em": pytest.approx(50.0)}
    assert s["groups"]["hard"]["f1"] == pytest.approx(50.0) and s["groups"]["hard"]["em"] == pytest.approx(100 / 3)
    assert s["all"]["f1"] == pytest.approx((75 + 0 + 50) / 3)
    assert s["all"]["em"] == pytest.approx((50 + 0 + 100 / 3) / 3)
    # the mean over questions differs when the levels differ in size
    assert s["micro"]["f1"] == pytest.approx(100 * 3.0 / 6)
    assert s["halt_reasons"] == {"finish": 5, "max_steps": 1}
    assert s["n"] == 6


def test_cost_per_question_and_totals():
    c = cost([_rec("easy", 1, 1, calls=2, prompt=100, completion=10, latency=1.0),
              _rec("easy", 0, 0, calls=4, prompt=300, completion=30, latency=3.0)])
    assert c["calls_per_q"] == 3 and c["prompt_tokens_per_q"] == 200 and c["completion_tokens_per_q"] == 20
    assert c["latency_s_per_q"] == 2.0 and c["completion_tokens_total"] == 40 and c["calls_total"] == 6


def test_metrics_and_groups_per_benchmark():
    assert metrics_for("hotpotqa") == ("f1", "em")
    assert metrics_for("scienceqa") == ("acc",)
    assert metrics_for("custom", [{"scores": {"acc": 1.0}}]) == ("acc",)
    assert metrics_for("custom", [{"scores": {"f1": 1.0, "em": 1.0}}]) == ("f1", "em")
    assert ordered_groups(["hard", "grade5-8", "zeta", "easy", "grade1-4", "alpha"]) == [
        "easy", "hard", "grade1-4", "grade5-8", "alpha", "zeta"]
    assert group_of({"level": "medium"}) == "medium" and group_of({}) == "all" and group_of(None) == "all"
    assert ALL == "All"


def test_mean_and_sample_std_over_seeds():
    m, sd = mean_std([40.0, 50.0])
    assert m == 45.0 and sd == pytest.approx(7.0710678)  # sqrt(((-5)^2 + 5^2) / (2 - 1))
    assert mean_std([12.5]) == (12.5, None)
    assert mean_std([]) == (0.0, None)


# ---- self-debugging: turns, error turns, recovery ----------------------------------------
TOOLS = ["Retrieve", "Lookup"]


def test_codeact_turns_are_its_blocks_and_an_error_is_a_block_that_did_not_run_through():
    steps = [code("print(pages)", "error"), code(""), code("while True: pass", "timeout"),
             code("print(retrieve('x'))", "tool-limit"), code("finish('Seine')", "ok"), finish("Seine")]
    # no block is a format error; the closing Finish only records what finish() gave: no turn
    assert turn_errors(steps, TOOLS) == [True, True, True, True, False]


def test_a_text_turn_is_an_error_when_the_graph_or_the_environment_could_not_use_it():
    repeat = builders.fragment("repeated", observation="Paris is a city.")
    steps = [
        step("Wikipedia", "Paris", builders.fragment("unknown_action", action="Wikipedia", actions="…")),
        step("", "", builders.fragment("invalid_react", actions="…")),  # no action read
        step("Search", "Paris"),  # a library tool this method was not offered
        step("Retrieve", "", builders.fragment("empty_argument", action="Retrieve", usage="Retrieve[entity]")),
        step("Retrieve", "Paris] river"),  # the environment refuses text after the closing bracket
        step("Retrieve", "Paris", repeat),  # a repeat is answered, not refused
        step("Lookup", "river", "No more results."),  # a tool's answer is no error
        finish("Seine"),  # the model's Finish is a turn
    ]
    assert turn_errors(steps, TOOLS) == [True, True, True, True, True, False, False, False]


def test_reflexion_turns_run_over_every_trial_and_old_records_cannot_tell():
    trials = [{"actions": [step("Wikipedia", "x"), finish("Lyon")]},
              {"actions": [step("Retrieve", "Paris"), finish("Seine")]}]
    record = {"trajectory": [step("Retrieve", "Paris", "long page"), finish("Seine")], "trials": trials}
    assert record_turns(record, TOOLS) == [True, False, False, False]
    assert record_turns({"id": "a", "halt_reason": "finish"}, TOOLS) is None  # no trajectory
    assert record_turns({"trajectory": [code("print(1)"), finish("1")]}, TOOLS) is None  # a block without status
    assert record_turns({**record, "trials": [{"steps": 2}]}, TOOLS) is None  # trials without their actions
    assert self_debugging([{"id": "a", "halt_reason": "finish"}], TOOLS) is None


def test_recovered_is_a_later_turn_after_an_error_and_a_finish():
    records = [
        {"trajectory": [code("x", "error"), code("finish('a')", "ok"), finish("a")], "halt_reason": "finish"},
        {"trajectory": [code("x", "error"), code("")], "halt_reason": "parse_error"},  # no finish
        # the error came in the turn that answered: nothing came after it
        {"trajectory": [code("y", "ok"), code("finish('a'); 1/0", "error"), finish("a")], "halt_reason": "finish"},
        {"trajectory": [step("Wikipedia", "x"), step("Retrieve", "Paris"), finish("b")], "halt_reason": "finish"},
        {"trajectory": [code("finish('a')", "ok"), finish("a")], "halt_reason": "finish"},
        {"halt_reason": "finish"},  # an older record: counts in none
    ]
    assert self_debugging(records, TOOLS) == {
        "episodes": 5, "turns": 10, "error_turns": 5, "episodes_with_error": 4, "recovered": 2,
        "turns_per_q": 2.0, "error_turn_pct": 50.0, "recovered_pct": 50.0,
    }
    clean = self_debugging([records[4], {"trajectory": [], "halt_reason": "context"}], TOOLS)
    assert (clean["turns_per_q"], clean["error_turn_pct"], clean["recovered_pct"]) == (0.5, 0.0, None)
    assert self_debugging([{"trajectory": [], "halt_reason": "context"}], TOOLS)["error_turn_pct"] is None


def test_a_record_keeps_each_trials_actions_without_observations():
    first = [step("Wikipedia", "x", "Wikipedia is not an available action."), finish("Lyon")]
    second = [step("Retrieve", "Paris", "Paris is a city."), finish("Seine")]
    state = {"answer": "Seine", "halt_reason": "finish", "trajectory": second, "usage": {},
             "trials": [{"answer": "Lyon", "reward": 0.0, "halt_reason": "finish", "trajectory": first},
                        {"answer": "Seine", "reward": 1.0, "halt_reason": "finish", "trajectory": second}]}
    record = question_record("reflexion", _task([QA]), QA, state, 1.0)
    assert [t["actions"] for t in record["trials"]] == [
        [{"action": "Wikipedia", "argument": "x"}, {"action": "Finish", "argument": "Lyon"}],
        [{"action": "Retrieve", "argument": "Paris"}, {"action": "Finish", "argument": "Seine"}],
    ]
    assert record["trials"][0]["steps"] == 2 and record_turns(record, TOOLS) == [True, False, False, False]
