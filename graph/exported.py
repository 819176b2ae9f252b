"""The graphs that ``langgraph.json`` lists, for ``langgraph dev`` / LangGraph Studio
and other servers that bring their own persistence.

Compiled without a checkpointer (the dev server refuses a graph that has one).
Building them connects to nothing: models, tasks and environments are made per run
from the context (endpoint, task, tools, …), which Studio shows and edits. The
baselines (``cot``, ``plan_solve``, ``reflexion``) are listed too, so that Studio can
run the same question through every method an evaluation compares.
"""

from autoact.graph.baselines import build_cot_graph, build_plan_solve_graph, build_reflexion_graph
from autoact.graph.codeact import build_codeact_graph
from autoact.graph.group import build_group_graph
from autoact.graph.react import build_react_graph

group = build_group_graph(name="group")
react = build_react_graph(name="react")
codeact = build_codeact_graph(name="codeact")
cot = build_cot_graph(name="cot")
plan_solve = build_plan_solve_graph(name="plan_solve")
reflexion = build_reflexion_graph(name="reflexion")

__all__ = ["group", "react", "codeact", "cot", "plan_solve", "reflexion"]
