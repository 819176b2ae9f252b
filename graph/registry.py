"""The graph registry: every kind of agent graph the product can run, by name.

A :class:`GraphKind` bundles a graph's builder, the context schema its runs read and
whether it acts with tools. The evaluation's methods name a kind (``eval/methods.py``),
and ``autoact ask/chat --graph``, the LangServe chat routes and ``langgraph.json``
(``graph/exported.py``) offer the registered ones. Adding a graph is its builder plus
one :func:`register_graph`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from .baselines import ReflexionContext, build_cot_graph, build_plan_solve_graph, build_reflexion_graph
from .codeact import CodeActContext, build_codeact_graph
from .context import BaseContext, GroupContext, ReactContext
from .group import build_group_graph
from .react import build_react_graph


@dataclass(frozen=True)
class GraphKind:
    name: str
    #: ``build(models=None, *, backend=None, settings=None, name=...)`` -> a compiled graph
    build: Callable[..., Any]
    context: type[BaseContext]
    uses_tools: bool
    description: str


class UnknownGraph(ValueError):
    pass


GRAPHS: dict[str, GraphKind] = {}


def register_graph(kind: GraphKind) -> GraphKind:
    """Add ``kind`` to the registry; a name may be registered once."""
    if kind.name in GRAPHS:
        raise ValueError(f"a graph named {kind.name!r} is registered already")
    GRAPHS[kind.name] = kind
    return kind


def graph_kind(name: str) -> GraphKind:
    if name not in GRAPHS:
        raise UnknownGraph(f"unknown graph {name!r}; the graphs are {', '.join(GRAPHS)}")
    return GRAPHS[name]


def graph_names(*, uses_tools: bool | None = None) -> tuple[str, ...]:
    """The registered graphs' names (only those that act with tools, or only those that do not)."""
    return tuple(n for n, k in GRAPHS.items() if uses_tools is None or k.uses_tools == uses_tools)


for _kind in (
    GraphKind("group", build_group_graph, GroupContext, True,
              "group planning: plan, tool and reflect agents (iterative or one-pass)"),
    GraphKind("react", build_react_graph, ReactContext, True, "single-agent ReAct with text actions"),
    GraphKind("codeact", build_codeact_graph, CodeActContext, True,
              "CodeAct: every action a Python block run in the sandbox, the tools as functions"),
    GraphKind("cot", build_cot_graph, ReactContext, False, "chain of thought: one call, no tools"),
    GraphKind("plan_solve", build_plan_solve_graph, ReactContext, False, "plan-and-solve: a plan, then the answer; no tools"),
    GraphKind("reflexion", build_reflexion_graph, ReflexionContext, True,
              "ReAct trials with verbal self-reflection after a failed trial (a question without a gold answer, "
              "as a chat asks, gets one trial: the retry needs the score)"),
):
    register_graph(_kind)
