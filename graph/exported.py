"""The graphs that ``langgraph.json`` lists, for ``langgraph dev`` / LangGraph Studio
and other servers that bring their own persistence.

Compiled without a checkpointer (the dev server refuses a graph that has one).
Building them connects to nothing: models, tasks and environments are made per run
from the context (endpoint, task, tools, …), which Studio shows and edits.
"""

from autoact.graph.codeact import build_codeact_graph
from autoact.graph.group import build_group_graph
from autoact.graph.react import build_react_graph

group = build_group_graph(name="group")
react = build_react_graph(name="react")
codeact = build_codeact_graph(name="codeact")

__all__ = ["group", "react", "codeact"]
