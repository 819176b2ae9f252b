"""The CodeAct graph: one model acts by writing Python code.

    start -> act -> execute -> act ... -> execute (finish called) -> finalize

``act`` asks for ``Thought: …`` and one fenced ```` ```python ```` block (the
transcript of :mod:`autoact.prompts.codeact`); ``execute`` runs the block in the
episode's sandbox session (:class:`~autoact.tools.sandbox.PythonSandbox`: the
successful blocks so far are replayed first, so variables carry over) with the
task's tools bridged in as functions — ``retrieve(entity)``, ``lookup(keyword)``,
``search(query)``, ``image2text()`` — each answering exactly what its text action
(``Retrieve[entity]`` …) answers, since both go through the task environment.
``finish(answer)`` records the answer; the episode ends after that block and is
scored as the ReAct graph scores it. A turn without a code block gets an
observation that says how to write one, except in a chat
(``plain_answer_ends``), where a reply in plain words is the answer.

The environment is rebuilt for each block from the snapshot taken at the start of
the episode, and the replayed blocks call their tools again: the tools are
deterministic in the order of calls, so the replay brings the environment (the
page Lookup reads, its cursor) to where the earlier turns left it, and the state
keeps no second copy of it.

No reflection: the answer given with ``finish`` stands.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Literal

from langchain_core.language_models import BaseChatModel
from langgraph.graph import END, START, StateGraph
from langgraph.types import Checkpointer, Command
from pydantic import Field
from typing_extensions import NotRequired, TypedDict

from autoact.actions import Action
from autoact.prompts import codeact as prompt
from autoact.prompts.builders import one_line
from autoact.settings import Settings
from autoact.tools.sandbox import PythonSandbox, SandboxLimits, SandboxUnavailable, ensure_python_tool

from .context import ReactContext
from .calls import ContextOverflow, Deps, ask_model, node
from .environment import Backend, TaskSetupError, default_backend
from .models import ModelResolver
from .nodes import (
    MAX_STORED_OBSERVATION,
    finalize_logic,
    finish,
    halt,
    over_budget,
    prompt_chars,
    record_usage,
    response_text,
    shows_examples,
    start_logic,
    task_and_tools,
    tool_names,
    worked_examples,
)
from .state import AgentState, InputState, OutputState

ROLE = "meta"
#: Tokens a turn may generate when the context sets none: a code block is longer
#: than a ReAct step (the settings' default suits the latter).
DEFAULT_TURN_TOKENS = 384

ActTarget = Literal["execute", "act", "finalize"]
ExecuteTarget = Literal["act", "finalize"]


class CodeActContext(ReactContext):
    """Settings of the CodeAct graph (one model writes code; no reflection)."""

    prompt_format: Literal["transcript"] = Field(
        "transcript", description="CodeAct prompts are transcripts (one text the model continues)"
    )
    reflect: Literal[False] = Field(False, description="CodeAct does not judge its answers: finish(answer) stands")
    sandbox_cpu_s: int = Field(10, ge=1, le=120, description="CPU seconds one code block may use")
    sandbox_wall_s: float = Field(20.0, ge=1.0, le=600.0, description="wall-clock seconds one code block may take")
    sandbox_memory_mb: int = Field(1024, ge=64, le=16384, description="address space of the block's interpreter")
    plain_answer_ends: bool = Field(
        False,
        description="a turn in plain words, without a code block, is the final answer (a chat, where a greeting "
        "or a direct reply needs no code); off (evaluation, synthesis): such a turn gets an observation that asks "
        "for code, and the answer must come from finish(answer)",
    )


class CodeStep(TypedDict):
    """A code turn in the trajectory: ``action`` is ``Code`` and ``argument`` the
    block (empty for a turn without one); ``status`` is the sandbox's verdict on the
    block (``ok``, ``error`` for a traceback, ``timeout``, ``cpu-limit`` …; absent for a
    turn without code); ``tool_calls`` are the block's bridged calls
    (``{"tool", "argument", "answer"}``, the answer cut short)."""

    thought: str
    action: str
    argument: str
    observation: str
    status: NotRequired[str]
    tool_calls: NotRequired[list[dict[str, str]]]


class CodeActState(AgentState):
    """The agent state plus the sandbox session (``PythonSandbox.get_state()``).
    ``env_state`` stays the snapshot of the episode's start (see the module notes)."""

    session: NotRequired[dict[str, Any] | None]


# ---- the bridged functions -----------------------------------------------------------------
class Answer:
    """What ``finish(answer)`` recorded during a block (the first non-empty call counts)."""

    def __init__(self) -> None:
        self.text: str | None = None

    def finish(self, argument: str) -> str:
        if self.text is not None:
            return prompt.fragment("answer_given", answer=self.text)
        if not one_line(argument):
            return prompt.fragment("needs_argument", name="finish", example='finish("answer")')
        self.text = one_line(argument)
        return prompt.fragment("answer_recorded", answer=self.text)


def bridged_tools(task: Any, offered: list[str], env_state: dict | None, backend: Backend,
                  answer: Answer) -> dict[str, Callable[[str], str]]:
    """``{function name: callable}`` for the block: each call is the tool's text action
    on the environment, threaded through the calls of the block (replays included)."""
    current = {"env": env_state}

    def bridge(function: prompt.Function) -> Callable[[str], str]:
        def call(argument: str) -> str:
            argument = one_line(argument)
            if function.tool == "Image2Text":
                argument = "image"  # its text action takes a placeholder
            elif not argument:
                return prompt.fragment("needs_argument", name=function.name,
                                       example=function.usage.replace("(", '("').replace(")", '")'))
            result, current["env"] = backend.step(task, offered, current["env"], Action(function.tool, argument))
            return str(result.observation)

        return call

    tools = {f.name: bridge(f) for f in prompt.functions(offered)}
    tools["finish"] = answer.finish
    return tools


def sandbox_session(context: CodeActContext, state: CodeActState, tools: dict[str, Callable[[str], str]]):
    """The episode's session, rebuilt from the state, with this block's tools."""
    limits = SandboxLimits(cpu_s=context.sandbox_cpu_s, wall_s=context.sandbox_wall_s,
                         memory_mb=context.sandbox_memory_mb)
    return PythonSandbox(limits, cells=(state.get("session") or {}).get("cells"), tools=tools)


# ---- nodes ------------------------------------------------------------------------------------
async def start(state: CodeActState, context: CodeActContext, deps: Deps):
    """Refuse a run whose sandbox cannot isolate code (unless the weak mode was
    chosen), then start the episode as the other graphs do, with an empty session."""
    try:
        await asyncio.to_thread(ensure_python_tool)
    except SandboxUnavailable as exc:
        raise TaskSetupError(f"CodeAct runs code, but {exc}") from exc
    command = await start_logic(lambda _: "act")(state, context, deps)
    return Command(goto=command.goto, update={**command.update, "session": {"cells": []}})


async def act(state: CodeActState, context: CodeActContext, deps: Deps):
    steps = state.get("trajectory", [])
    if len(steps) >= context.max_steps:
        return halt("max_steps")
    task, tools = await task_and_tools(context, deps)
    offered = tool_names(tools)
    examples: list = []
    if await shows_examples(context, deps, ROLE):
        if context.example_source == "task":  # the task's seed episodes, as code (generic where none fits)
            examples = prompt.task_examples((await worked_examples(deps, task, offered, "task")), offered)
        else:
            examples = prompt.default_examples(offered)
    text = prompt.codeact_prompt(task.description, offered, state["question"], prompt.turns_of(steps),
                                 examples=examples, obs_chars=context.observation_chars)
    usage = state.get("usage", {})
    max_tokens = context.max_tokens or DEFAULT_TURN_TOKENS
    if over_budget(text, usage, context, deps, ROLE, max_tokens=max_tokens):
        return halt("context")
    response = await ask_model(context, deps, ROLE, prompt.KIND, text, max_tokens=max_tokens)
    if isinstance(response, ContextOverflow):
        return halt("context")
    usage = record_usage(usage, ROLE, response, prompt_chars(text))
    reply = response_text(response)
    turn = prompt.parse_code_turn(reply)
    if not turn.ok and context.plain_answer_ends and turn.thought and prompt.FENCE not in reply:
        # scored and ended as finish(answer) would be (a broken fence is not plain words)
        return await finish(state, context, deps, "", turn.thought, usage, "finalize")
    if not turn.ok:
        return no_code(state, context, turn, offered, usage)
    pending = {"thought": turn.thought, "action": prompt.CODE, "argument": turn.code, "observation": ""}
    return Command(goto="execute", update={"pending": pending, "usage": usage, "invalid_streak": 0})


def no_code(state: CodeActState, context: CodeActContext, turn: prompt.CodeTurn, offered: list[str],
            usage: dict) -> Command:
    """A turn without a code block: an observation that says how to write one, then
    another turn (``max_invalid`` such turns in a row end the episode)."""
    observation = prompt.fragment("no_code", functions=prompt.function_names(offered) or "none")
    step = {"thought": turn.thought, "action": prompt.CODE, "argument": "", "observation": observation}
    streak = int(state.get("invalid_streak", 0)) + 1
    update = {"trajectory": [*state.get("trajectory", []), step], "usage": usage, "invalid_streak": streak,
              "pending": None}
    if streak >= context.max_invalid:
        return halt("parse_error", update)
    if len(update["trajectory"]) >= context.max_steps:
        return halt("max_steps", update)
    return Command(goto="act", update=update)


async def execute(state: CodeActState, context: CodeActContext, deps: Deps):
    """Runs the pending block in the session; a block that called finish ends the
    episode with the answer scored (``nodes.finish``, as in the ReAct graph)."""
    pending = state.get("pending")
    if not pending:
        raise RuntimeError("execute reached without a pending code block")
    task, tools = await task_and_tools(context, deps)
    answer = Answer()
    functions = bridged_tools(task, tool_names(tools), state.get("env_state"), deps.backend, answer)
    session = sandbox_session(context, state, functions)
    result = await asyncio.to_thread(lambda: session.run(pending["argument"]))
    step = {**pending, "observation": prompt.trim(result.observation(), MAX_STORED_OBSERVATION),
            "status": result.status, "tool_calls": result.tool_calls}
    after = {**state, "trajectory": [*state.get("trajectory", []), step]}
    update = {"trajectory": after["trajectory"], "session": session.get_state(), "pending": None}
    if answer.text is not None:
        command = await finish(after, context, deps, "", answer.text, state.get("usage", {}), "finalize")
        return Command(goto=command.goto, update={**update, **command.update})
    return Command(goto="act", update=update)


def build_codeact_graph(
    models: dict[str, BaseChatModel] | None = None,
    *,
    backend: Backend | None = None,
    settings: Settings | None = None,
    checkpointer: Checkpointer = None,
    name: str = "codeact",
):
    """The compiled CodeAct graph.

    ``models``: ``{"meta": model}`` to inject (else made per run from the context);
    ``backend``: tasks and environments (else ``autoact.tools``); ``checkpointer``:
    None for ``langgraph dev``, a SQLite saver for the CLI.
    """
    deps = Deps(ModelResolver(models, settings), backend or default_backend(), CodeActContext)
    graph = StateGraph(CodeActState, context_schema=CodeActContext, input_schema=InputState,
                       output_schema=OutputState)
    graph.add_node("start", node(start, deps), destinations=("act",))
    graph.add_node("act", node(act, deps), destinations=ActTarget.__args__)
    graph.add_node("execute", node(execute, deps), destinations=ExecuteTarget.__args__)
    graph.add_node("finalize", node(finalize_logic, deps))
    graph.add_edge(START, "start")
    graph.add_edge("finalize", END)
    return graph.compile(checkpointer=checkpointer, name=name)


__all__ = ["CodeActContext", "CodeActState", "CodeStep", "build_codeact_graph", "act", "execute"]
