"""The baseline graphs (chain of thought, plan-and-solve, Reflexion) on scripted
models and the fake task: prompts, answers, scores, usage and the trial loop."""

from __future__ import annotations


import pytest
from langchain_core.messages import HumanMessage

from autoact.graph.baselines import (
    build_cot_graph,
    build_plan_solve_graph,
    build_reflexion_graph,
    merge_usage,
    parse_plan_text,
    parse_reasoned_answer,
    short_note,
)
from autoact.prompts.builders import fragment
from graph_fakes import CONTEXT, GOLD, QUESTION, fake_backend, invoke, scripted


def _run(graph, instance=GOLD, context=None):
    payload = {"messages": [HumanMessage(QUESTION)], "instance": instance}
    return invoke(graph, payload, context=context or {"task": "fake"})


@pytest.mark.parametrize(
    "text,thought,answer",
    [
        ("Thought: Paris is on the Seine.\nAnswer: Seine", "Paris is on the Seine.", "Seine"),
        ("Thought: It is on a river.\nFinal answer: **the Seine**", "It is on a river.", "the Seine"),
        ("Thought: hmm\nAnswer:\nSeine", "hmm", "Seine"),
        ("Thought: so the answer is Seine. Done", "so the answer is Seine. Done", "Seine"),
        ("Thought: I will finish.\nAction: Finish[Seine]", "I will finish. Action: Finish[Seine]", "Seine"),
        ("Thought: I do not know which river", "I do not know which river", None),
        ("", "", None),
    ],
)
def test_parse_reasoned_answer(text, thought, answer):
    assert parse_reasoned_answer(text) == (thought, answer)


def test_parse_plan_text():
    assert parse_plan_text("Subgoal 1: Find the city.\nSubgoal 2: Find its river.\n") == ["Find the city.", "Find its river."]
    assert parse_plan_text("Step 1) look up\nstep 2 - answer") == ["look up", "answer"]
    assert parse_plan_text("First find the city.\nThen its river.") == ["First find the city.", "Then its river."]
    assert len(parse_plan_text("\n".join(f"Subgoal {i}: g{i}" for i in range(1, 20)))) == 8
    assert parse_plan_text("Subgoal 1: a\nSubgoal 2: a\nSubgoal 3: b") == ["a", "b"]


def test_cot_one_call_no_tools():
    model = scripted(" The tower is in Paris, on the Seine.\nAnswer: Seine")
    out = _run(build_cot_graph({"meta": model}, backend=fake_backend()))
    assert out["answer"] == "Seine" and out["reward"] == 1.0 and out["halt_reason"] == "finish"
    assert out["trajectory"] == [{"thought": "The tower is in Paris, on the Seine.", "action": "Finish",
                                  "argument": "Seine", "observation": ""}]
    assert out["usage"]["meta"]["calls"] == 1 and out["messages"][-1].content == "Seine"
    system, user = model.prompts()[0]
    assert "without tools" in system["content"] and "Retrieve" not in system["content"]
    assert "Answer: Seine" in system["content"]  # the worked example
    assert user["content"] == f"Question: {QUESTION}"
    assert model.prefills() == ["Thought:"]


def test_cot_without_an_answer_line_is_a_parse_error():
    out = _run(build_cot_graph({"meta": scripted(" I am not sure.")}, backend=fake_backend()))
    assert out["answer"] is None and out["reward"] is None and out["halt_reason"] == "parse_error"


def test_cot_multiple_choice_shows_options_and_the_image_caption():
    instance = {"id": "m1", "question": "Which animal is shown?\nOptions: (A) cat (B) dog", "answer": "dog",
                "choices": ["cat", "dog"], "meta": {"caption": "A dog on grass.", "ocr": ["WOOF"]}}
    model = scripted(" The picture shows a dog.\nAnswer: dog")
    out = _run(build_cot_graph({"meta": model}, backend=fake_backend()), instance=instance)
    system, user = model.prompts()[0]
    assert "Answer with the text of one option." in system["content"] and "(B) dolphin" in system["content"]
    assert user["content"] == ("Question: Which animal is shown?\nOptions: (A) cat (B) dog\n"
                               "Image: A dog on grass.\nText in the image: WOOF")
    assert out["answer"] == "dog"


def test_plan_then_solve():
    model = scripted(" Find the city of the tower.\nSubgoal 2: Find the river of that city.",
                     " The tower is in Paris; Paris is on the Seine.\nAnswer: Seine")
    out = _run(build_plan_solve_graph({"meta": model}, backend=fake_backend()))
    assert out["plan"] == ["Find the city of the tower.", "Find the river of that city."]
    assert [s["action"] for s in out["trajectory"]] == ["Plan", "Finish"]
    assert out["answer"] == "Seine" and out["reward"] == 1.0 and out["usage"]["meta"]["calls"] == 2
    plan_prompt, solve_prompt = model.prompts()
    assert "Do not answer the question yet." in plan_prompt[0]["content"]
    assert solve_prompt[1]["content"] == (f"Question: {QUESTION}\nSubgoal 1: Find the city of the tower.\n"
                                          "Subgoal 2: Find the river of that city.")
    assert model.prefills() == ["Subgoal 1:", "Thought:"]


WRONG = "Thought: I know it.\nAction: Finish[Loire]"
REFLECTION = "Thought: I guessed without reading. Next time retrieve the Eiffel Tower page first."
RIGHT = ["Thought: Find the tower.\nAction: Retrieve[Eiffel Tower]", "Thought: It is in Paris.\nAction: Finish[Seine]"]


def test_reflexion_retries_with_the_note_after_a_failed_trial():
    model = scripted(WRONG, REFLECTION, *RIGHT)
    graph = build_reflexion_graph({"meta": model}, backend=fake_backend())
    out = _run(graph, context={**CONTEXT, "max_trials": 3})
    assert [t["answer"] for t in out["trials"]] == ["Loire", "Seine"]
    assert [t["reward"] for t in out["trials"]] == [0.0, 1.0]
    assert out["answer"] == "Seine" and out["reward"] == 1.0 and out["halt_reason"] == "finish"
    assert out["notes"] == ["I guessed without reading. Next time retrieve the Eiffel Tower page first."]
    assert out["question"] == QUESTION and len(out["trajectory"]) == 2  # the last trial's episode
    assert out["usage"]["meta"]["calls"] == 4
    prompts = model.prompts()
    assert "The answer you gave, Loire, was wrong." in prompts[1][1]["content"]
    # the note goes into the next trial's question; the first trial had none
    assert "Notes you wrote" not in prompts[0][1]["content"]
    assert "Next time retrieve the Eiffel Tower page first." in prompts[2][1]["content"]
    # the environment's reward judges a trial, not the model: no ReAct reflection call
    judge = fragment("react_reflect_instruction")
    assert not any(p[1]["content"].endswith(judge) for p in prompts)


def test_reflexion_stops_after_max_trials():
    model = scripted(WRONG, REFLECTION, WRONG)
    out = _run(build_reflexion_graph({"meta": model}, backend=fake_backend()), context={**CONTEXT, "max_trials": 2})
    assert len(out["trials"]) == 2 and out["reward"] == 0.0 and out["answer"] == "Loire"
    assert out["usage"]["meta"]["calls"] == 3 and not model.responses


def test_reflexion_without_gold_has_one_trial():
    model = scripted(WRONG)
    no_gold = {"id": "c1", "question": QUESTION, "answer": None}
    out = _run(build_reflexion_graph({"meta": model}, backend=fake_backend()), instance=no_gold,
               context={**CONTEXT, "max_trials": 3})
    assert len(out["trials"]) == 1 and out["reward"] is None and out["answer"] == "Loire"


def test_notes_are_kept_short():
    assert short_note("Thought: I looked up the wrong page. Next time search first. Then read. More.") == (
        "I looked up the wrong page. Next time search first.")
    long = short_note("Thought: " + "word " * 200)
    assert len(long) <= 302 and long.endswith(" …")
    assert short_note("Thought: Look again.\nAction: Reflect[wrong]") == "Look again."


def test_merge_usage():
    a = {"meta": {"calls": 1, "prompt_tokens": 10, "completion_tokens": 2, "prompt_chars": 30}}
    b = {"meta": {"calls": 2, "prompt_tokens": 5, "completion_tokens": 1, "prompt_chars": 15},
         "plan": {"calls": 1, "prompt_tokens": 1, "completion_tokens": 1, "prompt_chars": 3}}
    assert merge_usage(a, b) == {"meta": {"calls": 3, "prompt_tokens": 15, "completion_tokens": 3, "prompt_chars": 45},
                                 "plan": {"calls": 1, "prompt_tokens": 1, "completion_tokens": 1, "prompt_chars": 3}}


@pytest.mark.parametrize("name", ["cot", "plan_solve", "reflexion"])
def test_baselines_are_studio_graphs(name):
    """``langgraph dev`` lists them (``langgraph.json``), compiled without a checkpointer,
    each showing its whole context with the descriptions."""
    import json
    from pathlib import Path

    from autoact.graph.registry import graph_kind
    from autoact.graph import exported

    graphs = json.loads((Path(__file__).parents[1] / "langgraph.json").read_text())["graphs"]
    graph = getattr(exported, name)
    assert graphs[name] == f"./graph/exported.py:{name}" and graph.name == name and graph.checkpointer is None
    fields = graph.get_context_jsonschema()["properties"]
    schema = graph_kind(name).context
    assert set(fields) == set(schema.model_fields)
    assert all(fields[f]["description"] == field.description for f, field in schema.model_fields.items())
    assert "messages" in graph.get_input_jsonschema()["properties"]
