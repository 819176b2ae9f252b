"""Fakes for the graph and prompt tests: a scripted chat model and a tiny task.

The task follows the ``autoact.tools`` contract (``load_task``, ``tool_library``,
``TaskEnv``, ``TaskInstance``) on a three-page encyclopedia, so the graphs' logic is
tested without a corpus index or a model server.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import Tool

from autoact.actions import Action, parse_action
from autoact.graph.environment import Backend
from autoact.prompts.builders import one_line
from autoact.prompts.kinds import KINDS
from autoact.prompts.records import training_points


class ScriptedChatModel(BaseChatModel):
    """Replies with the scripted texts in order and records every prompt it gets.

    Usage metadata counts one token per four characters, like a real server would
    report some count, so the graphs' token accounting can be checked.
    """

    responses: list[str]
    calls: list[list[BaseMessage]] = []
    call_kwargs: list[dict] = []

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        self.calls.append(list(messages))
        self.call_kwargs.append({"stop": stop, **kwargs})
        if not self.responses:
            raise AssertionError(f"the script ran out after {len(self.calls) - 1} replies")
        text = self.responses.pop(0)
        prompt_tokens = sum(len(str(m.content)) for m in messages) // 4
        usage = {"input_tokens": prompt_tokens, "output_tokens": len(text) // 4 + 1,
                 "total_tokens": prompt_tokens + len(text) // 4 + 1}
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text, usage_metadata=usage))])

    def prompts(self) -> list[list[dict[str, str]]]:
        """The prompts received, as builder-style role/content dicts, without the
        opened assistant turn (the prefill) a call may end with."""
        roles = {"system": "system", "human": "user", "ai": "assistant"}
        return [
            [{"role": roles[m.type], "content": m.content} for m in call if m is not call[-1] or m.type != "ai"]
            for call in self.calls
        ]

    def prefills(self) -> list[str | None]:
        return [call[-1].content if call[-1].type == "ai" else None for call in self.calls]


def scripted(*responses: str) -> ScriptedChatModel:
    return ScriptedChatModel(responses=list(responses), calls=[], call_kwargs=[])


PAGES = {
    "Eiffel Tower": "The Eiffel Tower is a lattice tower in Paris. It stands by the Seine river. It was finished in 1889.",
    "Paris": "Paris is the capital of France. The city is built on the Seine river. It has many museums.",
    "Seine": "The Seine is a river in northern France. It flows into the English Channel.",
}


@dataclass
class FakeInstance:
    id: str
    question: str
    answer: str | None
    choices: list[str] | None = None
    meta: dict = field(default_factory=dict)


@dataclass
class StepResult:
    observation: str
    reward: float
    done: bool
    info: dict


class FakeTask:
    name = "fake"
    description = "Answer questions about places using a small encyclopedia."
    default_tools = ["Retrieve", "Lookup"]

    def __init__(self) -> None:
        self.loads = 0

    @staticmethod
    def _norm(text: str) -> str:
        return " ".join(re.sub(r"[^a-z0-9 ]", " ", text.lower()).replace(" the ", " ").split())

    def score(self, prediction: str, instance: FakeInstance) -> dict:
        em = float(self._norm(prediction) == self._norm(instance.answer or ""))
        return {"reward": em, "em": em}


class FakeEnv:
    """Retrieve[page] and Lookup[keyword] over PAGES, Finish scored by the task and
    Reflect recorded, with a JSON snapshot."""

    def __init__(self, task: FakeTask, tool_names: list[str]):
        self.task, self.tool_names = task, list(tool_names)
        self.state: dict[str, Any] = self._fresh(None)

    @staticmethod
    def _fresh(instance: dict | None) -> dict[str, Any]:
        return {"page": None, "seen": {}, "steps": 0, "instance": instance, "answer": None, "verdicts": []}

    def reset(self, instance: FakeInstance) -> str:
        self.state = self._fresh(dataclasses.asdict(instance))
        return instance.question

    def get_state(self) -> dict:
        return {**self.state, "seen": dict(self.state["seen"]), "verdicts": list(self.state["verdicts"])}

    def set_state(self, state: dict) -> None:
        self.state = {**state, "seen": dict(state["seen"]), "verdicts": list(state["verdicts"])}

    def step(self, text: str) -> StepResult:
        return self.act(parse_action(text))

    def act(self, action: Action) -> StepResult:
        self.state["steps"] += 1
        name, arg = action.name, action.argument
        if name == "Finish":
            self.state["answer"] = arg
            instance = FakeInstance(**self.state["instance"])
            score = self.task.score(arg, instance) if instance.answer else None
            return StepResult(f"Finished: {arg}", score["reward"] if score else None, True, {"score": score})
        if name == "Reflect":
            self.state["verdicts"].append(arg)
            return StepResult(f"Reflection: {arg}", 0.0, arg == "right", {"verdict": arg})
        if name not in self.tool_names:
            return StepResult(f"Invalid action {name}[{arg}].", 0.0, False, {})
        if name == "Retrieve":
            if arg in PAGES:
                self.state["page"] = arg
                return StepResult(PAGES[arg].split(". ")[0] + ".", 0.0, False, {})
            return StepResult(f"Could not find [{arg}]. Similar: {sorted(PAGES)}.", 0.0, False, {})
        page = self.state["page"]
        if page is None:
            return StepResult("No page retrieved yet.", 0.0, False, {})
        sentences = [s.strip() for s in PAGES[page].split(". ") if arg.lower() in s.lower()]
        seen = self.state["seen"].get(arg, 0)
        self.state["seen"][arg] = seen + 1
        if seen >= len(sentences):
            return StepResult("No more results.", 0.0, False, {})
        return StepResult(f"(Result {seen + 1} / {len(sentences)}) {sentences[seen].rstrip('.')}.", 0.0, False, {})


TOOLS = {
    "Retrieve": Tool(name="Retrieve", func=lambda x: x, description="Get the first sentence of an encyclopedia page.",
                     metadata={"usage": "Retrieve[entity]"}),
    "Lookup": Tool(name="Lookup", func=lambda x: x, description="Next sentence with the keyword in the last page.",
                   metadata={"usage": "Lookup[keyword]"}),
    "Search": Tool(name="Search", func=lambda x: x, description="Top passages for a query.",
                   metadata={"usage": "Search[query]"}),
}


def fake_backend(task: FakeTask | None = None) -> Backend:
    task = task or FakeTask()

    def load_task(name: str, data=None, corpus=None) -> FakeTask:
        if name != "fake":
            raise ValueError(f"unknown task {name!r}")
        task.loads += 1
        return task

    return Backend(load_task=load_task, tool_library=lambda t: dict(TOOLS), task_env=FakeEnv,
                   task_instance=FakeInstance)


QUESTION = "Which river runs through the city of the Eiffel Tower?"
GOLD = {"id": "q1", "question": QUESTION, "answer": "Seine"}
#: The earlier chat format: these graph tests check its prompts message by message
#: (the transcript format has its own tests in test_graph_transcript.py).
CONTEXT = {"task": "fake", "max_steps": 8, "prompt_format": "chat"}


# ---- running the (async) graphs from a sync test ------------------------------------------------
def invoke(graph: Any, payload: dict, config: dict | None = None, **kwargs: Any) -> dict:
    """``graph.ainvoke`` run to the end (the graphs' nodes are async)."""
    return asyncio.run(graph.ainvoke(payload, config, **kwargs))


def stream(graph: Any, payload: dict, config: dict | None = None, **kwargs: Any) -> list:
    """Every chunk of ``graph.astream``, in order."""

    async def collect() -> list:
        return [chunk async for chunk in graph.astream(payload, config, **kwargs)]

    return asyncio.run(collect())


def react_prompts(out: dict, task_description: str, tools: list, prompt_format: str = "chat") -> list:
    """The prompts the builder makes for the single ReAct agent at every point of a
    finished episode (each valid step, each reflection): what the graph must have sent."""
    kind = KINDS["react"]
    build = kind.chat_prompt if prompt_format == "chat" else kind.transcript_prompt
    return [
        build(task_description, tools, out["question"], history=history, reflections=before,
              reflect=point == "reflection")
        for point, _, history, before, item in training_points(out["trajectory"], tools, out["reflections"])
        if point == "reflection" or one_line(item["argument"])
    ]
