"""The graphs in the transcript format (the default): one text per call, continued by the model."""

from __future__ import annotations

from langchain_core.messages import HumanMessage

from autoact.graph.group import build_group_graph
from autoact.graph.react import build_react_graph
from autoact.prompts import transcript
from autoact.prompts.builders import default_examples
from autoact.prompts.records import training_records

from graph_fakes import FakeTask, GOLD, QUESTION, TOOLS, fake_backend, invoke, scripted

CONTEXT = {"task": "fake", "max_steps": 8}  # prompt_format defaults to transcript


def _sent(model) -> list[str]:
    """The transcript prompts a scripted model received (one user turn each)."""
    assert all(len(call) == 1 and call[0].type == "human" for call in model.calls)
    return [call[0].content for call in model.calls]


def test_react_episode_in_transcript_prompts():
    meta = scripted(
        " I need the tower's city.\nAction: Retrieve[Eiffel Tower]",
        " The tower is in Paris. I look for the river.\nAction: Lookup[river]",
        " It is the Seine.\nAction: Finish[Seine]",
        " The observation names the Seine.\nAction: Reflect[right]",
    )
    graph = build_react_graph({"meta": meta}, backend=fake_backend())
    state = invoke(graph, {"messages": [HumanMessage(QUESTION)], "instance": GOLD}, context=CONTEXT)
    assert state["answer"] == "Seine" and state["reward"] == 1.0 and state["halt_reason"] == "finish"
    assert [s["thought"] for s in state["trajectory"]][0] == "I need the tower's city."
    assert state["reflections"] == [{"thought": "The observation names the Seine.", "verdict": "right"}]
    prompts = _sent(meta)
    assert all(p.endswith("\nThought:") for p in prompts)
    # the base model sees the generic worked examples (the fake task has no seeds)
    for example in default_examples(["Retrieve", "Lookup"]):
        assert transcript.episode_text(example) in prompts[0]
    assert prompts[1].endswith("Action: Retrieve[Eiffel Tower]\nObservation: The Eiffel Tower is a lattice tower "
                               "in Paris.\nThought:")
    # no structured-output request reaches an injected model
    assert all("extra_body" not in kw for kw in meta.call_kwargs)


def test_group_prompts_sent_equal_the_training_records():
    plan = scripted(
        " I need the tower's city.\nAction: Retrieve",
        " Paris lies on a river.\nAction: Lookup",
        " It is the Seine.\nAction: Finish",
    )
    tool = scripted("Eiffel Tower]", "river]", "Seine]")
    reflect = scripted(" The observation names the Seine.\nAction: Reflect[right]")
    graph = build_group_graph({"plan": plan, "tool": tool, "reflect": reflect}, backend=fake_backend())
    context = {**CONTEXT, "worked_examples": "never"}  # the prompts a fine-tuned adapter sees
    state = invoke(graph, {"messages": [HumanMessage(QUESTION)], "instance": GOLD}, context=context)
    assert state["answer"] == "Seine" and state["reward"] == 1.0
    assert [s["argument"] for s in state["trajectory"]] == ["Eiffel Tower", "river", "Seine"]
    specs = [{"name": n, "description": TOOLS[n].description, "usage": TOOLS[n].metadata["usage"]}
             for n in ("Retrieve", "Lookup")]
    records = training_records(state["trajectory"], FakeTask.description, specs, QUESTION,
                                          state["reflections"])
    assert _sent(plan) == [r["prompt"] for r in records["plan"]]
    assert _sent(tool) == [r["prompt"] for r in records["tool"]]
    assert _sent(reflect) == [r["prompt"] for r in records["reflect"]]
    assert [r["completion"] for r in records["tool"]] == ["Eiffel Tower]", "river]", "Seine]"]


def test_tool_answer_without_its_closing_bracket_is_read():
    plan = scripted(" It is the Seine.\nAction: Finish")
    tool = scripted("Seine")  # the server stops at "]" and drops it
    reflect = scripted(" Supported.\nAction: Reflect[right]")
    graph = build_group_graph({"plan": plan, "tool": tool, "reflect": reflect}, backend=fake_backend())
    state = invoke(graph, {"messages": [HumanMessage(QUESTION)], "instance": GOLD}, context=CONTEXT)
    assert state["answer"] == "Seine"
    assert _sent(tool)[0].endswith("Thought: It is the Seine.\nAction: Finish[")


def test_after_a_repeated_action_the_guide_allows_only_finish(monkeypatch):
    from autoact.graph.models import ModelResolver
    from autoact.prompts import guides

    # pretend the injected model is a vLLM server, so the graph sends its guides
    monkeypatch.setattr(ModelResolver, "serves", lambda self, role: True)
    meta = scripted(
        " I need the tower.\nAction: Retrieve[Eiffel Tower]",
        " Again.\nAction: Retrieve[Eiffel Tower]",
        " The page said Paris.\nAction: Finish[Paris]",
    )
    graph = build_react_graph({"meta": meta}, backend=fake_backend())
    state = invoke(graph, {"messages": [HumanMessage(QUESTION)], "instance": GOLD},
                         context={**CONTEXT, "reflect": False})
    assert state["trajectory"][1]["observation"].startswith("You did this before")
    sent = [kw["extra_body"]["structured_outputs"]["regex"] for kw in meta.call_kwargs]
    assert sent == [guides.react_step(["Retrieve", "Lookup"])] * 2 + [guides.react_step([])]
    off = scripted(" a\nAction: Retrieve[Eiffel Tower]", " b\nAction: Retrieve[Eiffel Tower]", " c\nAction: Finish[x]")
    graph = build_react_graph({"meta": off}, backend=fake_backend())
    invoke(graph, {"messages": [HumanMessage(QUESTION)], "instance": GOLD},
                 context={**CONTEXT, "reflect": False, "repeat_guard": False})
    assert off.call_kwargs[2]["extra_body"]["structured_outputs"]["regex"] == guides.react_step(["Retrieve", "Lookup"])


def test_completion_calls_reach_the_run_callbacks():
    # a completions client (BaseLLM) is called with generate(), which does not read the
    # run's callbacks from the context; Studio's event stream and tracing need them
    from langchain_core.callbacks import BaseCallbackHandler
    from langchain_core.language_models.fake import FakeListLLM

    class Seen(BaseCallbackHandler):
        def __init__(self):
            self.prompts, self.ends = [], 0

        def on_llm_start(self, serialized, prompts, **kwargs):
            self.prompts.extend(prompts)

        def on_llm_end(self, response, **kwargs):
            self.ends += 1

    meta = FakeListLLM(responses=[" It is the Seine.\nAction: Finish[Seine]",
                                  " The answer names the river.\nAction: Reflect[right]"])
    seen = Seen()
    graph = build_react_graph({"meta": meta}, backend=fake_backend())
    state = invoke(graph, {"messages": [HumanMessage(QUESTION)], "instance": GOLD}, {"callbacks": [seen]},
                         context=CONTEXT)
    assert state["answer"] == "Seine" and state["usage"]["meta"]["calls"] == 2
    assert len(seen.prompts) == seen.ends == 2 and all(p.endswith("\nThought:") for p in seen.prompts)
