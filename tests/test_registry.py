"""Adding a tool and a method through the registries alone: a glossary tool, and a
ReAct method that acts with it, registered from inside the test, then used by the
environment, the synthesis filter, the graph's prompt, the evaluation and the report
without a change anywhere else."""

from __future__ import annotations

import asyncio
import inspect
import json
from pathlib import Path

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from autoact.eval.methods import METHODS, Method, register_method, resolve_methods, unregister_method
from autoact.eval.report import build_report
from autoact.eval.runner import plan_eval, run_methods
from autoact.graph.registry import GRAPHS, graph_kind, graph_names
from autoact.settings import Settings
from autoact.synth.filter import answer_found_by_information
from autoact.tools.env import TaskEnv
from autoact.tools.library import (
    INFORMATION,
    ActionTool,
    ToolSpec,
    information_tools,
    register_tool,
    tool_library,
    tool_names,
    unregister_tool,
)
from autoact.tools.tasks import load_task

ENTRIES = {"velmora": "Velmora is the capital of the Ostrelle Archipelago, founded in 1412."}
QUESTION = "Velmora is the capital of which archipelago?"


class GlossaryTool(ActionTool):
    name: str = "Glossary"
    description: str = "Returns the glossary entry of a word. Use it for any name the question mentions."

    def act(self, argument: str) -> str:
        return ENTRIES.get(argument.lower(), f"The glossary has no entry {argument!r}.")


@pytest.fixture
def glossary():
    register_tool(ToolSpec("Glossary", GlossaryTool, "Glossary[word]", "Glossary[Velmora]", INFORMATION))
    register_method(Method("glossary-react", "react", {"reflect": False, "tools": ["Glossary"]},
                           "ReAct acting with the glossary"))
    yield
    unregister_method("glossary-react")
    unregister_tool("Glossary")


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "questions.jsonl"
    path.write_text(json.dumps({"id": "g1", "question": QUESTION, "answer": "Ostrelle Archipelago"}) + "\n")
    return path


class GlossaryReader(BaseChatModel):
    """Looks the name up until the prompt shows the entry, then answers from it;
    keeps every prompt."""

    prompts: list[str] = []

    @property
    def _llm_type(self) -> str:
        return "glossary-reader"

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        text = "\n".join(str(m.content) for m in messages)
        self.prompts.append(text)
        if "founded in 1412" in text.rsplit(QUESTION, 1)[-1]:
            reply = "Thought: The entry says Velmora is the capital of the Ostrelle Archipelago.\nAction: Finish[Ostrelle Archipelago]"
        else:
            reply = "Thought: I need Velmora's entry.\nAction: Glossary[Velmora]"
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=reply))])


def test_a_registered_tool_is_in_the_library_the_environment_and_the_filter(glossary):
    task = load_task("demo")
    assert tool_names()[-1] == "Glossary" and "Glossary" in information_tools()
    tool = tool_library(task)["Glossary"]
    assert tool.metadata == {"usage": "Glossary[word]", "example": "Glossary[Velmora]", "kind": INFORMATION}
    env = TaskEnv(task, ["Retrieve", "Glossary"])
    env.reset(task.instances[0])
    assert env.step("Glossary[Velmora]").observation == ENTRIES["velmora"]
    assert "Glossary[word]" in env.valid_actions
    record = {"answer": "1412", "trajectory": [
        {"action": "Glossary", "argument": "Velmora", "observation": ENTRIES["velmora"]},
        {"action": "Finish", "argument": "1412", "observation": ""}]}
    assert answer_found_by_information(record)  # an information tool: it can show a found answer


def test_the_registries_refuse_what_they_cannot_use(glossary):
    with pytest.raises(ValueError, match="registered already"):
        register_tool(ToolSpec("Glossary", GlossaryTool, "Glossary[word]", "Glossary[x]", INFORMATION))
    with pytest.raises(ValueError, match="capitalised word"):
        ToolSpec("Finish", GlossaryTool, "Finish[x]", "Finish[x]", INFORMATION)
    with pytest.raises(ValueError, match="kind must be"):
        ToolSpec("Atlas", GlossaryTool, "Atlas[place]", "Atlas[x]", "oracle")
    with pytest.raises(ValueError, match="usage must read"):
        ToolSpec("Atlas", GlossaryTool, "atlas(place)", "Atlas[x]", INFORMATION)
    with pytest.raises(ValueError, match="exists already"):
        register_method(Method("react", "react"))
    with pytest.raises(ValueError, match="exists already"):
        register_method(Method("autoact-r3", "group"))
    with pytest.raises(ValueError, match="unknown graph 'nowhere'"):
        register_method(Method("lost", "nowhere"))


def test_a_registered_method_with_a_registered_tool_runs_through_the_evaluation(glossary, data, tmp_path):
    settings = Settings(run_dir=tmp_path / "run", home=tmp_path / "home")
    assert "glossary-react" in [m.name for m in resolve_methods(["all"])]
    out = tmp_path / "eval"
    plan = plan_eval(settings, "custom", ["glossary-react", "cot"], out, data=[data])
    model = GlossaryReader()
    runs = asyncio.run(run_methods(plan, "http://unused/v1", 1, models={"meta": model}))
    assert runs["glossary-react"]["context"]["tools"] == ["Glossary"]
    # the graph's prompt offers the tool as the registry describes it
    assert "Glossary[word]" in model.prompts[0] and "Returns the glossary entry of a word" in model.prompts[0]
    record = json.loads((out / "glossary-react.jsonl").read_text().splitlines()[0])
    assert [(s["action"], s["argument"]) for s in record["trajectory"]] == [
        ("Glossary", "Velmora"), ("Finish", "Ostrelle Archipelago")]
    assert record["trajectory"][0]["observation"] == ENTRIES["velmora"]
    assert record["scores"]["f1"] == 1.0
    report = build_report([out])
    assert "glossary-react" in report["methods"]
    assert report["scores"]["f1"]["glossary-react"]["All"]["mean"] == 100.0


def test_graph_kinds_are_one_registry_for_every_entry_point():
    """The eval's methods, ``ask --graph``, the chat routes and ``langgraph.json`` all
    name registered graphs; langgraph.json lists every built-in one."""
    listed = json.loads((Path(__file__).parents[1] / "langgraph.json").read_text())["graphs"]
    assert set(listed) == set(GRAPHS)
    assert {m.graph for m in METHODS.values()} <= set(GRAPHS)
    assert graph_names(uses_tools=False) == ("cot", "plan_solve")
    assert all(graph_kind(m.graph).uses_tools == m.uses_tools for m in METHODS.values())


def test_every_node_of_every_graph_is_a_plain_async_function():
    """Nodes are ``async def (state, runtime)``: no generator, no sync twin."""
    for kind in GRAPHS.values():
        graph = kind.build(name=kind.name)
        for name, spec in graph.builder.nodes.items():
            runnable = spec.runnable
            assert runnable.func is None, (kind.name, name)
            assert inspect.iscoroutinefunction(runnable.afunc), (kind.name, name)
            assert "runtime" in inspect.signature(runnable.afunc).parameters, (kind.name, name)
