"""Parsing Name[argument] actions: accepted variants and every malformed form."""

import pytest

from autoact.actions import Action, ActionError, canonical_action, format_action, parse_action
from autoact.graph.parsing import parse_react

VALID = ["Retrieve", "Lookup", "Search", "Python", "Finish", "Reflect"]


@pytest.mark.parametrize(
    "text,expected",
    [
        ("Retrieve[Velmora]", Action("Retrieve", "Velmora")),
        ("  retrieve[ Velmora ]  ", Action("Retrieve", "Velmora")),
        ("Action: Search[lighthouse 1802]", Action("Search", "lighthouse 1802")),
        ("Action 3: Lookup[harbour]", Action("Lookup", "harbour")),
        ("Thought: I should read it.\nAction: Retrieve[Ida Brann]", Action("Retrieve", "Ida Brann")),
        ("`Finish[yes]`", Action("Finish", "yes")),
        ("Finish[yes].", Action("Finish", "yes")),
        ("Search [salt kiln]", Action("Search", "salt kiln")),
        ("Python[print([1, 2][0])]", Action("Python", "print([1, 2][0])")),
        ("Python[x = 1\nprint(x)]", Action("Python", "x = 1\nprint(x)")),
        ("Python[a = ']'; print(a)]", Action("Python", "a = ']'; print(a)")),
        ("Search[list [1] items]", Action("Search", "list [1] items")),
    ],
)
def test_accepted_forms(text, expected):
    assert parse_action(text, VALID) == expected


@pytest.mark.parametrize(
    "text,kind,mentions",
    [
        ("", "empty", "No action"),
        ("   ", "empty", "No action"),
        ("Retrieve Velmora", "no-brackets", "missing brackets"),
        ("Retrieve[Velmora", "unclosed-bracket", "closing"),
        ("[Velmora]", "no-name", "action name"),
        ("Retrieve[Velmora] then Lookup[x]", "trailing-text", "follows"),
        ("Retrieve[]", "empty-argument", "empty argument"),
        ("Retrieve[   ]", "empty-argument", "empty argument"),
        ("Wikipedia[Velmora]", "unknown-action", "Wikipedia"),
    ],
)
def test_malformed_forms_name_the_problem(text, kind, mentions):
    with pytest.raises(ActionError) as err:
        parse_action(text, VALID)
    assert err.value.kind == kind
    assert mentions in err.value.message


def test_without_valid_list_any_name_is_accepted():
    assert parse_action("Anything[x]") == Action("Anything", "x")


def test_str_round_trip():
    assert str(parse_action("Lookup[harbour]", VALID)) == "Lookup[harbour]"


def test_parse_action_is_linear_in_blank_lines():
    import time

    start = time.perf_counter()
    for text in ("\n" * 20_000 + "x", "\n" * 20_000 + "Action: Retrieve[Velmora]", " \n" * 20_000 + "Finish[1]"):
        try:
            parse_action(text)
        except ActionError:
            pass
    assert time.perf_counter() - start < 2.0
    assert parse_action("\n" * 20_000 + "Action: Retrieve[Velmora]").argument == "Velmora"
    assert parse_action("Thought: x\n  action 2: Lookup[founded]").name == "Lookup"


@pytest.mark.parametrize("written", ["LOOK-UP", "look_up", "lookup", "Lookup"])
def test_graph_and_environment_read_an_action_name_by_one_rule(written):
    # The graph reads the model's step, the environment the action the graph hands on:
    # both must accept (and spell) a name the same way.
    step = parse_react(f"Thought: read on.\nAction: {written}[harbour]", VALID)
    assert step.action == canonical_action(written, VALID) == "Lookup"
    assert parse_action(f"{written}[harbour]", VALID) == Action("Lookup", "harbour")
    assert parse_action(format_action(step.action, step.argument), VALID) == Action("Lookup", "harbour")


def test_a_code_action_keeps_brackets_after_its_first_closing_one_whatever_its_spelling():
    assert parse_action("python[print(a[0]) ; b = [1]]", VALID) == Action("Python", "print(a[0]) ; b = [1]")
