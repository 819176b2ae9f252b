"""The single-agent ReAct graph: one model thinks, acts, answers and reflects.

Trajectory synthesis runs it with the base model (the meta-agent); evaluation uses it
as the zero-shot baseline.

    start -> act -> execute -> act ... -> act (Finish) -> reflect -> finalize
                                                             \\-> act (Reflect[wrong], bounded)

``act`` asks for ``Thought: …`` / ``Action: Name[argument]`` (generation stops at
``\\nObservation``); ``reflect`` asks the same model for ``Thought: …`` /
``Action: Reflect[right|wrong]``.
"""

from __future__ import annotations

from typing import Literal

from langchain_core.language_models import BaseChatModel
from langgraph.graph import END, START, StateGraph
from langgraph.types import Checkpointer, Command

from autoact.prompts import builders, guides
from autoact.prompts.builders import FINISH
from autoact.settings import Settings

from .context import BaseContext, ReactContext
from .calls import Deps, node
from .environment import Backend, default_backend
from .models import ModelResolver
from .nodes import (
    after_reflection,
    ask_reflection,
    ask_step,
    begin_turn,
    choices_of,
    execute_logic,
    finalize_logic,
    finish,
    finish_forced,
    halt,
    invalid_step,
    start_logic,
    tool_names,
)
from .parsing import ParsedStep, parse_react
from .state import AgentState, InputState, OutputState

ROLE = "meta"

ActTarget = Literal["execute", "reflect", "act", "finalize"]
ReflectTarget = Literal["act", "finalize"]


async def act(state: AgentState, context: BaseContext, deps: Deps):
    turn = await begin_turn(state, context, deps, "react", role=ROLE)
    if isinstance(turn, Command):
        return turn
    allowed = [] if finish_forced(context, state.get("trajectory", [])) else tool_names(turn.tools)
    guide = guides.react_step(allowed, choices_of(state))
    parsed, usage = await ask_step(
        context, deps, ROLE, "react", turn.prompt, turn.usage, lambda t: parse_react(t, turn.names), guide=guide
    )
    if parsed is None:
        return halt("context", {"usage": usage})
    if parsed.ok and not parsed.argument:
        parsed = ParsedStep(parsed.thought, parsed.action, "", error="empty_argument")
    if not parsed.ok:
        return invalid_step(
            state, context, parsed, turn.names, usage, "act", usage_text=builders.usage_of(parsed.action, turn.tools)
        )
    if parsed.action == FINISH:
        return await finish(state, context, deps, parsed.thought, parsed.argument, usage, "reflect")
    pending = {"thought": parsed.thought, "action": parsed.action, "argument": parsed.argument, "observation": ""}
    return Command(goto="execute", update={"pending": pending, "usage": usage, "invalid_streak": 0})


async def reflect(state: AgentState, context: BaseContext, deps: Deps):
    # the ReAct agent judges its own answer in its own prompt; past the budget the answer stands
    examples = {"reflection_examples": context.reflection_examples} if context.prompt_format == "transcript" else {}
    turn = await begin_turn(state, context, deps, "react", role=ROLE, step_limit=False, on_overflow="finish",
                            reflect=True, **examples)
    if isinstance(turn, Command):
        return turn
    thought, verdict, usage = await ask_reflection(context, deps, ROLE, "reflect", turn.prompt, turn.usage)
    return await after_reflection(state, context, deps, thought, verdict, usage, retry="act")


def build_react_graph(
    models: dict[str, BaseChatModel] | None = None,
    *,
    backend: Backend | None = None,
    settings: Settings | None = None,
    checkpointer: Checkpointer = None,
    name: str = "react",
):
    """The compiled ReAct graph.

    ``models``: ``{"meta": chat model}`` to inject (else made per run from the
    context); ``backend``: tasks and environments (else ``autoact.tools``);
    ``checkpointer``: None for ``langgraph dev``, a SQLite saver for the CLI.
    """
    deps = Deps(ModelResolver(models, settings), backend or default_backend(), ReactContext)
    graph = StateGraph(AgentState, context_schema=ReactContext, input_schema=InputState, output_schema=OutputState)
    graph.add_node("start", node(start_logic(lambda _: "act"), deps), destinations=("act",))
    graph.add_node("act", node(act, deps), destinations=ActTarget.__args__)
    graph.add_node("execute", node(execute_logic(lambda _: "act"), deps), destinations=("act",))
    graph.add_node("reflect", node(reflect, deps), destinations=ReflectTarget.__args__)
    graph.add_node("finalize", node(finalize_logic, deps))
    graph.add_edge(START, "start")
    graph.add_edge("finalize", END)
    return graph.compile(checkpointer=checkpointer, name=name)


__all__ = ["build_react_graph", "act", "reflect"]
