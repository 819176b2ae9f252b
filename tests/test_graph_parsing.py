"""Reading model outputs: forgiving where the intent is clear, never raising."""

from __future__ import annotations

import pytest

from autoact.graph.parsing import (
    canonical_action,
    parse_argument,
    parse_plan,
    parse_react,
    parse_reflection,
    parse_subgoals,
)

VALID = ["Retrieve", "Lookup", "Finish"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Thought: go\nAction: Retrieve[Paris]\nObservation: made up", ("go", "Retrieve", "Paris")),
        ("Thought 2: go\nAction 2: retrieve [Paris (city)]", ("go", "Retrieve", "Paris (city)")),
        ("Thought: a\nAction: Lookup[river", ("a", "Lookup", "river")),
        ("Thought: a\nAction: Finish: Seine", ("a", "Finish", "Seine")),
        ("Thought: a\nAction: `Finish[\"Seine\"]`", ("a", "Finish", "Seine")),
        ("I think\nso\nFinish[the Seine]", ("I think so", "Finish", "the Seine")),
        ("Thought: one\nAction: Retrieve[A]\nThought: two\nAction: Retrieve[B]", ("one", "Retrieve", "A")),
        ("Thought: nest\nAction: Finish[a [b] c]", ("nest", "Finish", "a [b] c")),
    ],
)
def test_react_steps(text, expected):
    parsed = parse_react(text, VALID)
    assert parsed.ok and (parsed.thought, parsed.action, parsed.argument) == expected


@pytest.mark.parametrize(
    ("text", "error", "action"),
    [("", "empty", ""), ("   \n", "empty", ""), ("Thought: hmm, let me think", "no_action", ""),
     ("Thought: x\nAction: Search[y]", "unknown_action", "Search")],
)
def test_react_failures_are_results_not_exceptions(text, error, action):
    parsed = parse_react(text, VALID)
    assert not parsed.ok and parsed.error == error and parsed.action == action


def test_plan_takes_the_name_and_drops_an_argument():
    assert parse_plan("Thought: go\nAction: Retrieve[Paris]", VALID).action == "Retrieve"
    parsed = parse_plan("Thought: go on\nAction: lookup", VALID)
    assert (parsed.thought, parsed.action, parsed.argument, parsed.ok) == ("go on", "Lookup", "", True)
    assert parse_plan("Action: Fly", VALID).error == "unknown_action"
    assert parse_plan("I do not know", VALID).error == "no_action"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("Paris", "Paris"), ("\n  Retrieve[Paris]", "Paris"), ('Argument: "Paris"', "Paris"),
     ("Action: Retrieve[Paris]\n", "Paris"), ("[Seine]", "Seine"), ("Thought: x\nSeine river", "Seine river"),
     ("Paris\nObservation: invented", "Paris"), ("", ""), ("Observation: nothing", "")],
)
def test_tool_arguments(text, expected):
    assert parse_argument(text, "Retrieve") == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("Thought: ok\nAction: Reflect[right]", ("ok", "right")),
     ("Thought: no\nAction: Reflect[Wrong]", ("no", "wrong")),
     ("Thought: hmm\nAction: Reflect[incorrect]", ("hmm", "wrong")),
     ("Thought: fine\nAction: Right.", ("fine", "right")),
     ("Thought: I cannot tell", ("I cannot tell", None))],
)
def test_reflections(text, expected):
    assert parse_reflection(text) == expected


def test_subgoals():
    text = (
        "Subgoal 1: Find the page. Action: Retrieve\n"
        "Subgoal 2: look for the river\nAction: Lookup\n"
        "Subgoal 3: fly there Action: Fly\n"
        "Subgoal 4: answer Action: finish\n"
        "Subgoal 5: more Action: Retrieve"
    )
    assert parse_subgoals(text, VALID) == [
        ("Find the page.", "Retrieve"), ("look for the river.", "Lookup"), ("answer.", "Finish")
    ]
    assert parse_subgoals("no plan here", VALID) == []


def test_canonical_action_names():
    assert canonical_action("LOOK-UP", VALID) == "Lookup"
    assert canonical_action("finish", VALID) == "Finish"
    assert canonical_action("Search", VALID) is None
