"""The single-agent ReAct graph with a scripted model on a fake task."""

from __future__ import annotations

import asyncio

import httpx
import openai
import pytest
from langchain_core.messages import AIMessage, HumanMessage

from autoact.graph import build_react_graph
from autoact.prompts import builders
from autoact.prompts.kinds import KINDS
from graph_fakes import (
    CONTEXT,
    FakeTask,
    GOLD,
    QUESTION,
    ScriptedChatModel,
    TOOLS,
    fake_backend,
    invoke,
    react_prompts,
    scripted,
    stream,
)

RIGHT = "Thought: The page says so.\nAction: Reflect[right]"
WRONG = "Thought: Not supported.\nAction: Reflect[wrong]"


def run(meta, context=None, instance=GOLD):
    graph = build_react_graph({"meta": meta}, backend=fake_backend())
    payload = {"messages": [HumanMessage(content=QUESTION)], "instance": instance}
    order, out = [], None
    for mode, chunk in stream(graph, payload, context={**CONTEXT, **(context or {})}, stream_mode=["updates", "values"]):
        if mode == "updates":
            order.extend(chunk)
        else:
            out = chunk
    return order, out


def test_retrieve_lookup_finish_reflect_right():
    meta = scripted(
        "Thought: I need the tower's page.\nAction: Retrieve[Eiffel Tower]\nObservation: invented",
        "Thought: Find the river.\nAction: Lookup[river]",
        "Thought: It is the Seine.\nAction: Finish[Seine]",
        RIGHT,
    )
    order, out = run(meta)
    assert order == ["start", "act", "execute", "act", "execute", "act", "reflect", "finalize"]
    assert [(s["action"], s["argument"]) for s in out["trajectory"]] == [
        ("Retrieve", "Eiffel Tower"), ("Lookup", "river"), ("Finish", "Seine")
    ]
    assert out["trajectory"][0]["observation"] == "The Eiffel Tower is a lattice tower in Paris."
    assert (out["answer"], out["reward"], out["halt_reason"]) == ("Seine", 1.0, "finish")
    assert out["reflections"] == [{"thought": "The page says so.", "verdict": "right"}]
    assert isinstance(out["messages"][-1], AIMessage) and out["messages"][-1].content == "Seine"
    assert out["usage"]["meta"]["calls"] == 4 and out["usage"]["meta"]["prompt_tokens"] > 0
    assert [k["stop"] for k in meta.call_kwargs] == [list(KINDS["react"].chat_stops)] * 3 + [
        list(KINDS["reflect"].chat_stops)
    ]
    # every prompt is the builder's, and the reflection prompt asks for Reflect[...]
    tools = [TOOLS["Retrieve"], TOOLS["Lookup"]]
    assert meta.prompts() == react_prompts(out, FakeTask.description, tools)


def test_reflect_wrong_allows_one_retry():
    meta = scripted(
        "Thought: Guess.\nAction: Finish[Loire]", WRONG,
        "Thought: Check.\nAction: Retrieve[Paris]", "Thought: Seine.\nAction: Finish[Seine]", RIGHT,
    )
    order, out = run(meta, {"max_reflections": 1})
    assert order == ["start", "act", "reflect", "act", "execute", "act", "reflect", "finalize"]
    assert [r["verdict"] for r in out["reflections"]] == ["wrong", "right"]
    assert (out["answer"], out["reward"], out["halt_reason"]) == ("Seine", 1.0, "finish")


def test_second_wrong_reflection_ends_the_episode():
    meta = scripted("Thought: Guess.\nAction: Finish[Loire]", WRONG, "Thought: Guess.\nAction: Finish[Rhine]", WRONG)
    order, out = run(meta, {"max_reflections": 1})
    assert order == ["start", "act", "reflect", "act", "reflect", "finalize"]
    assert (out["answer"], out["reward"], out["halt_reason"]) == ("Rhine", 0.0, "max_reflections")


def test_step_limit():
    meta = scripted(*["Thought: Look.\nAction: Retrieve[Paris]"] * 3)
    order, out = run(meta, {"max_steps": 3})
    assert order == ["start"] + ["act", "execute"] * 3 + ["act", "finalize"]
    assert out["halt_reason"] == "max_steps" and out["answer"] is None and len(meta.calls) == 3


def test_malformed_and_unknown_actions_get_feedback():
    meta = scripted(
        "Thought: hmm", "", "Thought: Try.\nAction: Search[river]", "Thought: Try.\nAction: Retrieve[]",
        "Thought: ok.\nAction: Finish[Seine]", RIGHT,
    )
    _, out = run(meta, {"max_invalid": 4})
    observations = [s["observation"] for s in out["trajectory"][:3]]
    assert observations == [
        builders.fragment("invalid_react", actions="Retrieve, Lookup, Finish"),
        builders.fragment("unknown_action", action="Search", actions="Retrieve, Lookup, Finish"),
        builders.fragment("empty_argument", action="Retrieve", usage="Retrieve[entity]"),
    ]
    assert out["halt_reason"] == "finish" and out["answer"] == "Seine"
    assert "Search is not an available action" in meta.calls[3][1].content


def test_a_thought_without_action_is_completed_by_a_second_call():
    meta = scripted("Thought: I need the tower's page.", " Retrieve[Eiffel Tower]",
                    "I know it now\nAction: Finish[Seine]", RIGHT)
    _, out = run(meta)
    assert meta.prefills() == ["Thought:", "Thought: I need the tower's page.\nAction:", "Thought:", "Thought:"]
    assert [(s["thought"], s["action"], s["argument"]) for s in out["trajectory"]] == [
        ("I need the tower's page.", "Retrieve", "Eiffel Tower"), ("I know it now", "Finish", "Seine")
    ]
    assert out["usage"]["meta"]["calls"] == 4 and out["reward"] == 1.0


def test_parse_errors_in_a_row_halt():
    _, out = run(scripted("", "nothing useful", ""), {"max_invalid": 2})
    assert out["halt_reason"] == "parse_error" and out["answer"] is None
    assert "parse_error" in out["messages"][-1].content


class OverflowModel(ScriptedChatModel):
    """Answers like vLLM when the prompt is longer than the model's context."""

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        self.calls.append(list(messages))
        request = httpx.Request("POST", "http://127.0.0.1:1/v1/chat/completions")
        raise openai.BadRequestError(
            "This model's maximum context length is 2048 tokens.", response=httpx.Response(400, request=request), body=None
        )


def test_server_context_overflow_halts_with_context():
    meta = OverflowModel(responses=[], calls=[], call_kwargs=[])
    order, out = run(meta)
    assert order == ["start", "act", "finalize"] and out["halt_reason"] == "context"


def test_other_server_errors_propagate():
    class Broken(ScriptedChatModel):
        def _generate(self, messages, stop=None, run_manager=None, **kwargs):
            raise openai.APIConnectionError(request=httpx.Request("POST", "http://127.0.0.1:1/v1"))

    with pytest.raises(openai.APIConnectionError):
        run(Broken(responses=[], calls=[], call_kwargs=[]))


def test_a_repeated_action_with_the_same_result_is_pointed_out():
    meta = scripted(*["Thought: Look.\nAction: Retrieve[Eiffel Tower]"] * 2, "Thought: Seine.\nAction: Finish[Seine]", RIGHT)
    _, out = run(meta)
    first, second = out["trajectory"][:2]
    assert first["observation"] == "The Eiffel Tower is a lattice tower in Paris."
    assert second["observation"] == builders.fragment("repeated", observation=first["observation"])
    assert out["answer"] == "Seine"


def test_the_task_and_its_tools_are_made_once_per_run():
    task = FakeTask()
    backend = fake_backend(task)
    library, built = backend.tool_library, []
    backend.tool_library = lambda t: built.append(t) or library(t)
    meta = scripted("Thought: I need the page.\nAction: Retrieve[Eiffel Tower]",
                    "Thought: It is the Seine.\nAction: Finish[Seine]", RIGHT)
    graph = build_react_graph({"meta": meta}, backend=backend)
    payload = {"messages": [HumanMessage(content=QUESTION)], "instance": GOLD}
    out = asyncio.run(graph.ainvoke(payload, context=CONTEXT))
    assert out["answer"] == "Seine"
    assert (task.loads, len(built)) == (1, 1)  # not once per node


def test_the_environment_is_made_once_per_episode_and_restored_per_step():
    backend = fake_backend()
    made, env_class = [], backend.task_env
    backend.task_env = lambda task, names: made.append(names) or env_class(task, names)
    meta = scripted("Thought: I need the page.\nAction: Retrieve[Eiffel Tower]", "Thought: Find the river.\nAction: Lookup[river]",
                    "Thought: It is the Seine.\nAction: Finish[Seine]", RIGHT)
    graph = build_react_graph({"meta": meta}, backend=backend)
    out = invoke(graph, {"messages": [HumanMessage(content=QUESTION)], "instance": GOLD}, context=CONTEXT)
    assert [s["action"] for s in out["trajectory"]] == ["Retrieve", "Lookup", "Finish"]
    assert out["trajectory"][1]["observation"] != ""  # Lookup read the page Retrieve left in the restored env
    assert len(made) == 1  # reset and both steps used one pooled environment
    # a second episode reuses it, and starts clean
    meta2 = scripted("Thought: Find the river.\nAction: Lookup[river]", "Thought: No page.\nAction: Finish[none]", RIGHT)
    out2 = invoke(build_react_graph({"meta": meta2}, backend=backend),
                  {"messages": [HumanMessage(content=QUESTION)], "instance": GOLD}, context=CONTEXT)
    assert out2["trajectory"][0]["observation"] != out["trajectory"][1]["observation"]
    assert len(made) == 1
