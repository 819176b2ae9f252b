"""LangGraph graphs: single-agent ReAct (synthesis, baseline), group planning
(plan / tool / reflect agents; iterative and one-pass modes) and CodeAct (one agent
acting with Python code)."""

from autoact.graph.codeact import CodeActContext, build_codeact_graph
from autoact.graph.context import BaseContext, GroupContext, ReactContext
from autoact.graph.environment import Backend
from autoact.graph.group import build_group_graph
from autoact.graph.react import build_react_graph
from autoact.graph.state import AgentState, InputState, OutputState, Reflection, RoleUsage, Step, Subgoal

__all__ = [
    "AgentState",
    "Backend",
    "BaseContext",
    "CodeActContext",
    "GroupContext",
    "InputState",
    "OutputState",
    "ReactContext",
    "Reflection",
    "RoleUsage",
    "Step",
    "Subgoal",
    "build_codeact_graph",
    "build_group_graph",
    "build_react_graph",
]
