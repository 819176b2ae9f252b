"""Reading model outputs: forgiving where the intent is clear, never raising."""

from __future__ import annotations

import time

import pytest

from autoact.actions import canonical_action, format_action, parse_action
from autoact.graph.parsing import (
    ParsedStep,
    parse_argument,
    parse_bracketed_argument,
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


# ---- code arguments: Python runs across lines to its own closing bracket --------------------------
CODE_VALID = [*VALID, "Python"]


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("Thought: compute\nAction: Python[x = 6\nprint(x * 7)]", "x = 6\nprint(x * 7)"),
        ("Thought: t\nAction: Python[a = [1, 2]\nprint(a[0], f(x)[1])]\nObservation: made up",
         "a = [1, 2]\nprint(a[0], f(x)[1])"),
        ('Thought: t\nAction: Python[print("]")  # ] too\nprint(\'[\')]', 'print("]")  # ] too\nprint(\'[\')'),
        ('Thought: t\nAction: Python[s = """a]\nb["""\nprint(s)]', 's = """a]\nb["""\nprint(s)'),
        ("Thought: t\nAction: Python[\n    for i in range(2):\n        print(i)\n]",
         "for i in range(2):\n    print(i)"),
        ("Thought: t\nAction: Python[x = 6\nprint(x)\nObservation: 6", "x = 6\nprint(x)"),  # unclosed
        ("Thought: t\nAction: `Python[sorted([1877, 1802])[0]]`", "sorted([1877, 1802])[0]"),
        ("Let me compute\nPython[x = 6\nprint(x)]", "x = 6\nprint(x)"),  # a bare call
    ],
)
def test_react_code_arguments_keep_every_line(text, code):
    parsed = parse_react(text, CODE_VALID)
    assert parsed.ok and parsed.action == "Python" and parsed.argument == code
    # and the environment's own parser hands the tool the same code
    assert parse_action(format_action("Python", parsed.argument), CODE_VALID).argument == code


def test_other_actions_keep_one_line_arguments():
    assert parse_react("Thought: a\nAction: Lookup[river\nbank]", CODE_VALID).argument == "river"
    assert parse_argument("Paris\nLondon", "Retrieve") == "Paris"
    assert parse_bracketed_argument("Seine\nmore]") == "Seine"


@pytest.mark.parametrize(
    "text",
    ["x = [6]\nprint(x[0])", "Thought: code it\nx = [6]\nprint(x[0])\nObservation: 6",
     "Argument: x = [6]\nprint(x[0])", "Python[x = [6]\nprint(x[0])]\nmore", "[x = [6]\nprint(x[0])]",
     "Thought: t\nAction: Python[x = [6]\nprint(x[0])]"],
)
def test_tool_agent_code_arguments_keep_every_line(text):
    assert parse_argument(text, "Python") == "x = [6]\nprint(x[0])"


def test_transcript_tool_code_runs_to_the_bracket_closing_the_prompts():
    # the prompt ends with "Action: Python[": the model writes the code, then "]"
    assert parse_bracketed_argument("x = [6]\nprint(x[0])]\nObservation: 6", "Python") == "x = [6]\nprint(x[0])"
    assert parse_bracketed_argument("print(1)\nprint(2)", "Python") == "print(1)\nprint(2)"  # stopped at "]"
    assert parse_bracketed_argument("x = [6]\nprint(x[0])]") == "x = [6"  # other actions: as before


# ---- linear time on whitespace-heavy output ------------------------------------------------------------
SPACES = " " * 100_000
# Inputs that backtracked quadratically (or worse) before: a label without its colon,
# whitespace between "Reflect" and a non-verdict, a subgoal text followed by a run.
PATHOLOGICAL = [SPACES, "Thought" + SPACES + "x", "Action" + SPACES + "Retrieve[x]",
                "Thought: a\nAction: Reflect" + SPACES + "x", "Subgoal 1: go" + SPACES + "x",
                "\n".join([SPACES] * 3) + "x", "[" + "\n[ " * 30_000]
EMBEDDED = f"Thought:{SPACES}go{SPACES}on\nAction:{SPACES}Retrieve{SPACES}[Paris{SPACES}]{SPACES}"


def _timed(parse, expected: dict):
    start = time.perf_counter()
    results = [parse(text) for text in PATHOLOGICAL] + [parse(text) for text in expected]
    assert time.perf_counter() - start < 2.0
    assert results[len(PATHOLOGICAL):] == list(expected.values())
    return results


def test_parse_react_is_linear_in_whitespace():
    results = _timed(lambda t: parse_react(t, CODE_VALID), {
        EMBEDDED: ParsedStep("go on", "Retrieve", "Paris"),
        f"Thought: t\nAction: Python[x = 6{SPACES}\n{SPACES}\nprint(x * 7)]{SPACES}": ParsedStep(
            "t", "Python", "x = 6\n\nprint(x * 7)"),
    })
    assert results[0].error == "empty" and results[1] == ParsedStep("Thought x", error="no_action")


def test_parse_plan_is_linear_in_whitespace():
    results = _timed(lambda t: parse_plan(t, VALID), {EMBEDDED: ParsedStep("go on", "Retrieve")})
    assert results[0].error == "empty" and results[2].error == "no_action"


def test_parse_argument_is_linear_in_whitespace():
    _timed(lambda t: parse_argument(t, "Retrieve"), {
        EMBEDDED: "Paris", f"Argument:{SPACES}Paris{SPACES}": "Paris", SPACES: "",
    })
    _timed(lambda t: parse_argument(t, "Python"), {
        f"{SPACES}x = 6{SPACES}\nprint(x * 7){SPACES}\nObservation: 42": "x = 6\nprint(x * 7)",
    })


def test_parse_bracketed_argument_is_linear_in_whitespace():
    _timed(parse_bracketed_argument, {f"{SPACES}Paris{SPACES}]{SPACES}": "Paris", SPACES: ""})
    _timed(lambda t: parse_bracketed_argument(t, "Python"), {
        f"x = [6]{SPACES}\nprint(x[0]){SPACES}]{SPACES}": "x = [6]\nprint(x[0])",
    })


def test_parse_reflection_is_linear_in_whitespace():
    results = _timed(parse_reflection, {
        f"Thought:{SPACES}fine{SPACES}\nAction:{SPACES}Reflect{SPACES}[{SPACES}right{SPACES}]": ("fine", "right"),
    })
    assert results[0] == ("", None) and results[3] == ("a", None)


def test_parse_subgoals_is_linear_in_whitespace():
    results = _timed(lambda t: parse_subgoals(t, VALID), {
        f"Subgoal 1:{SPACES}find{SPACES}it{SPACES}Action:{SPACES}Retrieve{SPACES}\nSubgoal 2: answer\n"
        f"{SPACES}Action 2:{SPACES}finish": [("find it.", "Retrieve"), ("answer.", "Finish")],
    })
    assert results[4] == []
