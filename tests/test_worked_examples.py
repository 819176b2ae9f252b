"""Worked examples from the task's seeds: the last thought says what the question asks."""

import pytest

from autoact.tools import load_task
from autoact.tools.worked_examples import answer_clause, question_phrase, task_examples


@pytest.fixture(scope="module")
def demo():
    return load_task("demo")


@pytest.mark.parametrize(
    "question, phrase",
    [
        ("In which town was the cartographer who sailed on the Morning Gull born?", "in which town"),
        ("In what year was the Morning Gull launched?", "in what year"),
        ("Who built the Saltmarch Bridge?", "who built"),
        ("Who was the first keeper?", "who"),
        ("How many poems are in The Salt Hymns?", "how many poems"),
        ("How tall is the Velmora Lighthouse?", "how tall"),
        ("What did Nils Brandt invent?", "what"),
        ("Which ship sank first?", "which ship"),
        ("Where was Agnes Pell born?", "where"),
        ("Is Velmora older than Fennick?", None),
        ("", None),
    ],
)
def test_the_question_phrase_names_what_is_asked(question, phrase):
    assert question_phrase(question) == phrase


def test_answer_clause_falls_back_to_the_plain_form():
    assert answer_clause("In which town was he born?", "Fennick") == \
        "The question asks in which town, so the answer is Fennick."
    assert answer_clause("Is Velmora older than Fennick?", "yes") == "So the answer is yes."


def test_each_seed_example_ends_by_naming_what_its_question_asks(demo):
    examples = task_examples(demo, ["Retrieve", "Lookup"])
    assert [e["name"].startswith("seed:") for e in examples] == [True, True]
    for example in examples:
        last = example["steps"][-1]
        assert last["action"] == "Finish"
        assert last["thought"].endswith(f"The question asks {question_phrase(example['question'])}, "
                                        f"so the answer is {last['argument']}.")
