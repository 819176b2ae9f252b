"""The baselines' prompt builders: every template renders completely, the answer
format matches the parser, and the Reflexion notes are carried as written."""

from __future__ import annotations

import pytest

from autoact.graph.baselines import parse_reasoned_answer
from autoact.prompts import baseline_builders as bb
from autoact.prompts.builders import PromptError

TOOLS = [{"name": "Retrieve", "description": "Get a page.", "usage": "Retrieve[entity]"}]
STEPS = [{"thought": "Find it.", "action": "Retrieve", "argument": "Paris", "observation": "Paris is a city."},
         {"thought": "Guess.", "action": "Finish", "argument": "Loire", "observation": ""}]


def _all_prompts():
    mc = {"multiple_choice": True, "context": "Image: a cat"}
    return [
        bb.cot_messages("Task.", "Q?"),
        bb.cot_messages("Task.", "Q?", **mc),
        bb.plan_solve_plan_messages("Task.", "Q?"),
        bb.plan_solve_answer_messages("Task.", "Q?", ["a", "b"], **mc),
        bb.reflexion_messages("Task.", TOOLS, "Q?", STEPS, "Loire", "finish"),
        bb.reflexion_messages("Task.", TOOLS, "Q?", STEPS[:1], None, "max_steps"),
    ]


def test_templates_render_completely():
    for messages in _all_prompts():
        assert [m["role"] for m in messages] == ["system", "user"]
        for m in messages:
            assert "${" not in m["content"] and m["content"].strip() == m["content"] and "\n\n\n" not in m["content"]


def test_the_worked_examples_parse_as_answers():
    for mc in (False, True):
        system = bb.cot_messages("Task.", "Q?", multiple_choice=mc)[0]["content"]
        example = system.split("Example:\n", 1)[1]
        _, answer = parse_reasoned_answer(example.split("\n", 1)[1])
        assert answer == ("dolphin" if mc else "Seine")


def test_reflexion_outcome_and_notes():
    wrong = bb.reflexion_messages("Task.", TOOLS, "Q?", STEPS, "Loire", "finish")[1]["content"]
    assert wrong.endswith("The answer you gave, Loire, was wrong.") and "Action: Retrieve[Paris]" in wrong
    none = bb.reflexion_messages("Task.", TOOLS, "Q?", STEPS[:1], None, "max_steps")[1]["content"]
    assert none.endswith("You gave no answer (the attempt stopped: max_steps).")
    assert bb.reflexion_question("Q?", []) == "Q?"
    assert bb.reflexion_question("Q?", ["look first", "read  twice"]) == (
        "Q?\nYour earlier attempts at this question failed. Notes you wrote after them:\n- look first\n- read twice")


def test_instance_context():
    assert bb.instance_context({"meta": {"caption": "A map.", "ocr": ["Ohio", " "]}}) == "Image: A map.\nText in the image: Ohio"
    assert bb.instance_context({"meta": {}}) == "" and bb.instance_context(None) == ""


def test_empty_question_is_refused():
    with pytest.raises(PromptError, match="empty"):
        bb.cot_messages("Task.", "  ")
    with pytest.raises(PromptError, match="empty"):
        bb.plan_solve_plan_messages("Task.", "")
