"""The group-planning graph: the plan, tool and reflect agents take turns.

Iterative mode (one subgoal at a time, with feedback)::

    start -> plan -> tool -> execute -> plan ... -> plan (Finish) -> tool (answer)
          -> reflect -> finalize, or -> plan after Reflect[wrong] (bounded)

One-pass mode (Lumos): ``plan_all`` writes every subgoal first; ``ground`` hands them
to the tool agent one by one; ``execute`` runs each; the last subgoal is Finish, whose
argument (the answer) the tool agent writes; then reflection as above, with a
re-plan after ``Reflect[wrong]``.

Each agent is reached through its own model (the ``plan``, ``tool`` and ``reflect``
adapters when served, else the base), and every prompt comes from
``autoact.prompts.builders``: the functions that also cut the training records.
"""

from __future__ import annotations

from typing import Literal

from langchain_core.language_models import BaseChatModel
from langgraph.graph import END, START, StateGraph
from langgraph.types import Checkpointer, Command

from autoact.prompts import builders, guides
from autoact.prompts.builders import FINISH
from autoact.settings import Settings

from .context import BaseContext, GroupContext
from .calls import ContextOverflow, Deps, ask_model, node
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
    prompt_chars,
    record_usage,
    response_text,
    start_logic,
    tool_names,
)
from .parsing import ParsedStep, parse_argument, parse_bracketed_argument, parse_plan, parse_subgoals
from .state import AgentState, InputState, OutputState

#: Tokens allowed for a one-pass plan (several subgoal lines), at least.
ONE_PASS_MIN_TOKENS = 256

StartTarget = Literal["plan", "plan_all"]
PlanTarget = Literal["tool", "plan", "finalize"]
PlanAllTarget = Literal["ground", "plan_all", "finalize"]
GroundTarget = Literal["tool", "finalize"]
ToolTarget = Literal["execute", "reflect", "plan", "ground", "finalize"]
ExecuteTarget = Literal["plan", "ground"]
ReflectTarget = Literal["plan", "plan_all", "finalize"]


def _planner(context: BaseContext) -> str:
    return "plan_all" if getattr(context, "mode", "iterative") == "one_pass" else "plan"


def _next_subgoal_node(context: BaseContext) -> str:
    return "ground" if getattr(context, "mode", "iterative") == "one_pass" else "plan"


async def plan(state: AgentState, context: BaseContext, deps: Deps):
    """Iterative planning: the next thought and action name."""
    turn = await begin_turn(state, context, deps, "plan")
    if isinstance(turn, Command):
        return turn
    offered = [] if finish_forced(context, state.get("trajectory", [])) else tool_names(turn.tools)
    parsed, usage = await ask_step(
        context, deps, "plan", "plan", turn.prompt, turn.usage, lambda t: parse_plan(t, turn.names),
        guide=guides.plan_step(offered),
    )
    if parsed is None:
        return halt("context", {"usage": usage})
    if not parsed.ok:
        return invalid_step(state, context, parsed, turn.names, usage, "plan", plan_format=True)
    pending = {"thought": parsed.thought, "action": parsed.action, "argument": "", "observation": ""}
    return Command(goto="tool", update={"pending": pending, "usage": usage})


async def plan_all(state: AgentState, context: BaseContext, deps: Deps):
    """One-pass planning: every subgoal at once (after Reflect[wrong]: a new plan for
    the rest, seeing the episode so far)."""
    budget = max(context.max_tokens or deps.models.settings.sampling_for("plan").max_tokens, ONE_PASS_MIN_TOKENS)
    turn = await begin_turn(state, context, deps, "one_pass", max_tokens=budget)
    if isinstance(turn, Command):
        return turn
    response = await ask_model(context, deps, "plan", "one_pass", turn.prompt, max_tokens=budget)
    if isinstance(response, ContextOverflow):
        return halt("context")
    usage = record_usage(turn.usage, "plan", response, prompt_chars(turn.prompt))
    text = response_text(response)
    subgoals = [{"thought": t, "action": a} for t, a in parse_subgoals(text, turn.names)]
    if not subgoals:
        thought = text.splitlines()[0].strip() if text else ""
        return invalid_step(
            state, context, ParsedStep(thought=thought, error="no_action"), turn.names, usage, "plan_all",
            plan_format=True,
        )
    if subgoals[-1]["action"] != FINISH:
        subgoals.append({"thought": builders.fragment("finish_subgoal"), "action": FINISH})
    return Command(goto="ground", update={"subgoals": subgoals, "usage": usage, "invalid_streak": 0})


async def ground(state: AgentState, context: BaseContext, deps: Deps):
    """One-pass: hand the next subgoal to the tool agent."""
    if len(state.get("trajectory", [])) >= context.max_steps:
        return halt("max_steps")
    subgoals = list(state.get("subgoals", []))
    current = subgoals.pop(0) if subgoals else {"thought": builders.fragment("finish_subgoal"), "action": FINISH}
    pending = {"thought": current["thought"], "action": current["action"], "argument": "", "observation": ""}
    return Command(goto="tool", update={"pending": pending, "subgoals": subgoals})


async def tool(state: AgentState, context: BaseContext, deps: Deps):
    """The argument of the pending action (for Finish, the answer)."""
    pending = state.get("pending")
    if not pending:
        raise RuntimeError("tool reached without a pending action")
    turn = await begin_turn(state, context, deps, "tool", step_limit=False,
                            thought=pending["thought"], action=pending["action"])
    if isinstance(turn, Command):
        return turn
    transcript = isinstance(turn.prompt, str)
    # the guide ends with the closing bracket the transcript prompt opened
    guide = guides.tool_argument(pending["action"], choices_of(state)) if transcript else None
    response = await ask_model(context, deps, "tool", "tool", turn.prompt, guide=guide)
    if isinstance(response, ContextOverflow):
        return halt("context")
    usage = record_usage(turn.usage, "tool", response, prompt_chars(turn.prompt))
    text = response_text(response)
    argument = parse_bracketed_argument(text) if transcript else parse_argument(text, pending["action"])
    if not argument:
        parsed = ParsedStep(pending["thought"], pending["action"], "", error="empty_argument")
        return invalid_step(
            state, context, parsed, turn.names, usage, _next_subgoal_node(context),
            usage_text=builders.usage_of(pending["action"], turn.tools),
        )
    if pending["action"] == FINISH:
        return await finish(state, context, deps, pending["thought"], argument, usage, "reflect")
    return Command(
        goto="execute", update={"pending": {**pending, "argument": argument}, "usage": usage, "invalid_streak": 0}
    )


async def reflect(state: AgentState, context: BaseContext, deps: Deps):
    """The reflect agent judges the answer of the last Finish step."""
    # past the budget the answer stands: there is no room left to judge it
    turn = await begin_turn(state, context, deps, "reflect", step_limit=False, on_overflow="finish")
    if isinstance(turn, Command):
        return turn
    thought, verdict, usage = await ask_reflection(context, deps, "reflect", "reflect", turn.prompt, turn.usage)
    return await after_reflection(state, context, deps, thought, verdict, usage, retry=_planner(context))


def build_group_graph(
    models: dict[str, BaseChatModel] | None = None,
    *,
    backend: Backend | None = None,
    settings: Settings | None = None,
    checkpointer: Checkpointer = None,
    name: str = "group",
):
    """The compiled group-planning graph (both modes; the context picks one).

    ``models``: ``{"plan": …, "tool": …, "reflect": …}`` to inject (else made per
    run from the context); ``backend``: tasks and environments (else
    ``autoact.tools``); ``checkpointer``: None for ``langgraph dev``, SQLite for the CLI.
    """
    deps = Deps(ModelResolver(models, settings), backend or default_backend(), GroupContext)
    graph = StateGraph(AgentState, context_schema=GroupContext, input_schema=InputState, output_schema=OutputState)
    nodes = {
        "start": (start_logic(_planner), StartTarget),
        "plan": (plan, PlanTarget),
        "plan_all": (plan_all, PlanAllTarget),
        "ground": (ground, GroundTarget),
        "tool": (tool, ToolTarget),
        "execute": (execute_logic(_next_subgoal_node), ExecuteTarget),
        "reflect": (reflect, ReflectTarget),
    }
    for node_name, (logic, targets) in nodes.items():
        graph.add_node(node_name, node(logic, deps), destinations=targets.__args__)
    graph.add_node("finalize", node(finalize_logic, deps))
    graph.add_edge(START, "start")
    graph.add_edge("finalize", END)
    return graph.compile(checkpointer=checkpointer, name=name)


__all__ = ["build_group_graph", "plan", "plan_all", "ground", "tool", "reflect"]
