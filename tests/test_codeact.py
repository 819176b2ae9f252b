"""The CodeAct graph with a scripted model on the fake task, running its blocks in
the real sandbox; and the CodeAct prompt's format, both ways."""

from __future__ import annotations


from types import SimpleNamespace

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from pydantic import ValidationError

from autoact.graph import CodeActContext, build_codeact_graph
from autoact.graph.codeact import Answer, bridged_tools
from autoact.prompts import codeact as prompt

from graph_fakes import FakeEnv, FakeInstance, FakeTask, GOLD, PAGES, QUESTION, fake_backend, scripted, stream

CONTEXT = {"task": "fake", "max_steps": 6, "worked_examples": "never", "sandbox_cpu_s": 2, "sandbox_wall_s": 10}


def block(thought: str, code: str) -> str:
    """A model turn as the scripted model writes it (after the prompt's ``Thought:``)."""
    return f" {thought}\n```python\n{code}\n```"


def run(meta, context=None):
    graph = build_codeact_graph({"meta": meta}, backend=fake_backend())
    payload = {"messages": [HumanMessage(content=QUESTION)], "instance": GOLD}
    order, out = [], None
    for mode, chunk in stream(graph, payload, context={**CONTEXT, **(context or {})},
                                    stream_mode=["updates", "values"]):
        if mode == "updates":
            order.extend(chunk)
        else:
            out = chunk
    return order, out


def sent(model) -> list[str]:
    """The transcript prompts the scripted model received."""
    return [call[0].content for call in model.calls]


def twin(action: str, *earlier: str) -> str:
    """What the text action answers on the fake task after the ``earlier`` actions."""
    env = FakeEnv(FakeTask(), ["Retrieve", "Lookup"])
    env.reset(FakeInstance(**GOLD))
    for text in earlier:
        env.step(text)
    return env.step(action).observation


# ---- episodes -------------------------------------------------------------------------------
def test_variables_persist_across_turns_and_a_block_calls_two_tools():
    meta = scripted(
        block("I need the tower's city.", "tower = retrieve('Eiffel Tower')\nprint(tower)"),
        block("Read the city's page and find its river.",
              "retrieve(tower.split(' in ')[1].rstrip('.'))\nriver = lookup('river')\nriver"),
        block("It is the Seine.", "print(lookup('river'))\nfinish(river.split()[-2])"),
    )
    order, out = run(meta)
    assert order == ["start", "act", "execute", "act", "execute", "act", "execute", "finalize"]
    steps = out["trajectory"]
    assert [s["action"] for s in steps] == ["Code", "Code", "Code", "Finish"]
    # each function answers what its text action answers
    assert steps[0]["observation"] == twin("Retrieve[Eiffel Tower]") == PAGES["Eiffel Tower"].split(". ")[0] + "."
    lookup = twin("Lookup[river]", "Retrieve[Eiffel Tower]", "Retrieve[Paris]")
    assert steps[1]["observation"] == f"Out: {lookup!r}"
    # the replayed blocks brought Lookup's cursor to where it was: the next match is none
    assert steps[2]["observation"].startswith("No more results.")
    # only the block's own calls are recorded, not the replayed ones
    assert [(c["tool"], c["argument"]) for c in steps[1]["tool_calls"]] == [("retrieve", "Paris"), ("lookup", "river")]
    assert [c["tool"] for c in steps[2]["tool_calls"]] == ["lookup", "finish"]
    assert (out["answer"], out["reward"], out["halt_reason"]) == ("Seine", 1.0, "finish")
    assert out["score"] == {"reward": 1.0, "em": 1.0}
    assert isinstance(out["messages"][-1], AIMessage) and out["messages"][-1].content == "Seine"
    prompts = sent(meta)
    assert all(p.endswith("\nThought:") for p in prompts)
    assert prompts[1].endswith(
        "Thought: I need the tower's city.\n```python\ntower = retrieve('Eiffel Tower')\nprint(tower)\n```\n"
        "Observation: The Eiffel Tower is a lattice tower in Paris.\nThought:")
    assert out["usage"]["meta"]["calls"] == 3


def test_a_traceback_is_the_observation_and_the_next_turn_fixes_it():
    meta = scripted(
        block("Read the page.", "page = retrieve('Eiffel Tower')\nprint(pages)"),
        block("I misspelled the name.", "page = retrieve('Eiffel Tower')\nprint(page)"),
        block("The page names Paris; the question wants its river.", "finish('Seine')"),
    )
    _, out = run(meta)
    first = out["trajectory"][0]["observation"]
    assert first.startswith("Traceback") and "NameError: name 'pages' is not defined" in first
    assert 'File "<cell-1>", line 2' in first
    assert "NameError: name 'pages' is not defined" in sent(meta)[1]
    assert out["trajectory"][1]["observation"] == "The Eiffel Tower is a lattice tower in Paris."
    assert [s.get("status") for s in out["trajectory"]] == ["error", "ok", "ok", None]  # None: the Finish step
    assert (out["answer"], out["reward"], out["halt_reason"]) == ("Seine", 1.0, "finish")


def test_finish_ends_the_episode_with_the_tasks_reward():
    meta = scripted(block("I guess.", "finish('the Loire')\nprint('after finish')"))
    order, out = run(meta)
    assert order == ["start", "act", "execute", "finalize"] and len(meta.calls) == 1  # no reflection
    assert out["trajectory"][0]["observation"] == "after finish"  # the rest of the block still ran
    assert out["trajectory"][-1] == {"thought": "", "action": "Finish", "argument": "the Loire", "observation": ""}
    assert (out["answer"], out["reward"], out["score"]["em"], out["halt_reason"]) == ("the Loire", 0.0, 0.0, "finish")


def test_only_the_first_finish_of_a_block_counts():
    _, out = run(scripted(block("Two answers.", "first = finish('Seine')\nsecond = finish('Loire')\nsecond")))
    assert out["answer"] == "Seine" and out["reward"] == 1.0
    assert out["trajectory"][0]["observation"] == f"Out: {prompt.fragment('answer_given', answer='Seine')!r}"


def test_a_block_past_the_sandbox_limits_is_an_observation():
    meta = scripted(
        block("Loop.", "x = 1\nwhile True:\n    x += 1"),
        block("That was stuck; answer instead.", "finish('Seine')"),
    )
    order, out = run(meta, {"sandbox_cpu_s": 1})
    observation = out["trajectory"][0]["observation"]
    assert "TimeoutError: the code used more than 1 s of CPU time" in observation
    assert out["trajectory"][0]["status"] == "cpu-limit"
    assert "more than 1 s of CPU time" in sent(meta)[1]
    assert order[-1] == "finalize" and out["answer"] == "Seine" and out["halt_reason"] == "finish"


def test_a_turn_without_a_code_block_gets_a_helpful_observation():
    meta = scripted(" I think the answer is the Seine.", block("Now as code.", "finish('Seine')"))
    order, out = run(meta)
    expected = prompt.fragment("no_code", functions="retrieve, lookup")
    assert out["trajectory"][0] == {"thought": "I think the answer is the Seine.", "action": "Code", "argument": "",
                                    "observation": expected}
    assert "```python block" in expected and "retrieve, lookup" in expected
    assert sent(meta)[1].endswith(f"Thought: I think the answer is the Seine.\nObservation: {expected}\nThought:")
    assert order == ["start", "act", "act", "execute", "finalize"] and out["answer"] == "Seine"


def test_in_a_chat_a_plain_answer_ends_the_episode():
    meta = scripted(" Seine")
    order, out = run(meta, {"plain_answer_ends": True})
    assert order == ["start", "act", "finalize"] and len(meta.calls) == 1
    # recorded and scored as finish('Seine') would be
    assert out["trajectory"] == [{"thought": "", "action": "Finish", "argument": "Seine", "observation": ""}]
    assert (out["answer"], out["reward"], out["halt_reason"]) == ("Seine", 1.0, "finish")
    assert out["messages"][-1].content == "Seine"


@pytest.mark.parametrize("reply", [
    " Let me look.\n```js\nlookup('river')\n```",  # a fence, but no Python block: not plain words
    "   ",  # nothing to answer with
])
def test_in_a_chat_a_broken_block_or_an_empty_turn_still_asks_for_code(reply):
    meta = scripted(reply, block("Now as code.", "finish('Seine')"))
    order, out = run(meta, {"plain_answer_ends": True})
    assert out["trajectory"][0]["observation"] == prompt.fragment("no_code", functions="retrieve, lookup")
    assert order == ["start", "act", "act", "execute", "finalize"] and out["answer"] == "Seine"


def test_a_plain_answer_does_not_end_the_episode_by_default():
    assert CodeActContext().plain_answer_ends is False  # evaluation and synthesis ask for code
    _, out = run(scripted(" Seine", " Still Seine."), {"max_invalid": 2})
    assert [s["argument"] for s in out["trajectory"]] == ["", ""]
    assert (out["answer"], out["halt_reason"]) == (None, "parse_error")


def test_turns_without_code_in_a_row_halt_at_max_invalid():
    _, out = run(scripted("no code", "still none", "nor here"), {"max_invalid": 3})
    assert out["halt_reason"] == "parse_error" and out["answer"] is None and len(out["trajectory"]) == 3


def test_the_turn_limit_ends_the_episode():
    meta = scripted(*[block("Look again.", "print(retrieve('Paris'))")] * 3)
    order, out = run(meta, {"max_steps": 3})
    assert order == ["start"] + ["act", "execute"] * 3 + ["act", "finalize"]
    assert out["halt_reason"] == "max_steps" and out["answer"] is None and out["reward"] is None
    assert len(meta.calls) == 3


def test_worked_examples_show_code_turns():
    meta = scripted(block("Done.", "finish('Seine')"))
    run(meta, {"worked_examples": "always"})
    text = sent(meta)[0]
    for example in prompt.default_examples(["Retrieve", "Lookup"]):
        assert f"Question: {example['question']}\n{prompt.render_turns(example['turns'])}" in text
    assert "- retrieve(entity): " in text and "- lookup(keyword): " in text and "- finish(answer): " in text
    assert "search(" not in text  # only the offered tools' functions


def test_the_context_refuses_what_codeact_does_not_do():
    with pytest.raises(ValidationError):
        CodeActContext(reflect=True)
    with pytest.raises(ValidationError):
        CodeActContext(prompt_format="chat")


# ---- the bridged functions --------------------------------------------------------------------
class RecordingBackend:
    def __init__(self) -> None:
        self.actions: list[str] = []

    def step(self, task, tool_names, env_state, action):
        self.actions.append(str(action))
        return SimpleNamespace(observation=f"answer to {action}"), {"steps": len(self.actions)}


def test_bridged_functions_send_tool_actions():
    backend, answer = RecordingBackend(), Answer()
    tools = bridged_tools(FakeTask(), ["Retrieve", "Lookup", "Search", "Image2Text", "Calculator"], {}, backend, answer)
    assert sorted(tools) == ["finish", "image2text", "lookup", "retrieve", "search"]  # no calculator
    assert tools["retrieve"]("  Eiffel\n Tower ") == "answer to Retrieve[Eiffel Tower]"
    assert tools["image2text"]("") == "answer to Image2Text[image]"
    assert tools["search"]("river in Paris") == "answer to Search[river in Paris]"
    assert tools["lookup"]("") == prompt.fragment("needs_argument", name="lookup", example='lookup("keyword")')
    assert backend.actions == ["Retrieve[Eiffel Tower]", "Image2Text[image]", "Search[river in Paris]"]
    assert tools["finish"](" ") == prompt.fragment("needs_argument", name="finish", example='finish("answer")')
    assert answer.text is None
    assert tools["finish"]("Seine") == "Answer recorded: Seine" and answer.text == "Seine"


# ---- the prompt's format --------------------------------------------------------------------------
@pytest.mark.parametrize("text, thought, code", [
    ("Thought: Read it.\n```python\nx = 1\nprint(x)\n```\nmore text", "Read it.", "x = 1\nprint(x)"),
    (" Read it.\n```py\nif x:\n    y = 2\n```", "Read it.", "if x:\n    y = 2"),
    ("Thought: Read it.\n```\nprint(1)", "Read it.", "print(1)"),  # stopped before closing
    ("Thought: first\n```python\na = 1\n```\n```python\nb = 2\n```", "first", "a = 1"),
    ("Thought: no code here", "no code here", ""),
    ("Thought: inline ```print(1)```", "inline", ""),
    ("", "", ""),
])
def test_parse_code_turn(text, thought, code):
    turn = prompt.parse_code_turn(text)
    assert (turn.thought, turn.code, turn.ok) == (thought, code, bool(code))


def test_parsing_is_linear_on_long_whitespace():
    import time

    started = time.perf_counter()
    prompt.parse_code_turn("Thought:" + " " * 200_000 + "```" + " " * 200_000)
    assert time.perf_counter() - started < 1


def test_trim_keeps_the_end_of_a_traceback():
    text = "x" * 5000 + "\nZeroDivisionError: division by zero"
    cut = prompt.trim(text, 300)
    assert cut.endswith("ZeroDivisionError: division by zero") and len(cut) < 360 and "characters cut" in cut
    assert prompt.trim("short", 300) == "short"


def test_examples_fit_the_offered_tools():
    names = lambda tools: [e["name"] for e in prompt.default_examples(tools)]  # noqa: E731
    assert names(["Retrieve", "Lookup"]) == ["page-and-lookup", "one-page"]
    assert names(["Retrieve"]) == ["two-pages", "one-page"]
    assert names(["Search"]) == ["search"]
    assert names([]) == ["calculate"]
    for example in prompt._texts()["examples"]:
        assert "finish(" in example["turns"][-1]["code"] and "observation" not in example["turns"][-1]


def test_codeact_is_an_eval_method_and_a_studio_graph():
    import json
    from pathlib import Path

    from autoact.eval.methods import METHODS
    from autoact.graph.registry import graph_kind
    from autoact.eval.runner import method_context
    from autoact.graph import exported
    from autoact.graph.codeact import CodeActContext, build_codeact_graph
    from autoact.tools import load_task

    method = METHODS["codeact"]
    assert graph_kind(method.graph).build is build_codeact_graph and graph_kind(method.graph).context is CodeActContext
    context = method_context(method, load_task("demo"), ["Retrieve", "Lookup"], "http://127.0.0.1:1/v1", {"max_steps": 3})
    assert context["tools"] == ["Retrieve", "Lookup"] and context["max_steps"] == 3
    graphs = json.loads((Path(__file__).parents[1] / "langgraph.json").read_text())["graphs"]
    assert graphs["codeact"] == "./graph/exported.py:codeact" and exported.codeact.name == "codeact"
    assert exported.codeact.checkpointer is None
    fields = exported.codeact.get_context_jsonschema()["properties"]
    assert set(fields) == set(CodeActContext.model_fields) and fields["plain_answer_ends"]["default"] is False
