"""LangGraph graphs: single-agent ReAct (synthesis, baseline) and group planning
(plan / tool / reflect agents; iterative and one-pass modes)."""

from autoact.graph.context import BaseContext, GroupContext, ReactContext
from autoact.graph.environment import Backend
from autoact.graph.group import build_group_graph
from autoact.graph.react import build_react_graph
from autoact.graph.state import AgentState, InputState, OutputState, Reflection, RoleUsage, Step, Subgoal

__all__ = [
    "AgentState",
    "Backend",
    "BaseContext",
    "GroupContext",
    "InputState",
    "OutputState",
    "ReactContext",
    "Reflection",
    "RoleUsage",
    "Step",
    "Subgoal",
    "build_group_graph",
    "build_react_graph",
]
