"""The methods an evaluation compares, on the same model and the same questions.

Each method names a graph, the context that configures it, and the served LoRA
adapters it needs. A method whose adapter is not served fails with a message naming
it: falling back to the base model would put the base model's numbers under the
method's name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from autoact.graph.registry import graph_kind
from autoact.settings import AGENTS, BASE_MODEL_NAME

#: Group planning's context fields naming each sub-agent's model: its adapter.
GROUP_ADAPTERS = {f"{agent}_model": agent for agent in AGENTS}
#: Every role on the base model, named explicitly: left empty, a role would take its
#: adapter whenever the server serves one.
GROUP_BASE = {f"{agent}_model": BASE_MODEL_NAME for agent in AGENTS}
ONE_AGENT = "one-agent"


@dataclass(frozen=True)
class Method:
    name: str
    graph: str  # group | react | codeact | cot | plan_solve | reflexion
    context: dict[str, Any] = field(default_factory=dict)
    summary: str = ""

    @property
    def uses_tools(self) -> bool:
        """Whether the method's graph acts with tools (the registry says)."""
        return graph_kind(self.graph).uses_tools

    @property
    def adapters(self) -> tuple[str, ...]:
        """The adapters this method's context asks for (the base model is always served)."""
        names = [v for k, v in self.context.items() if k.endswith("_model") and v and v != BASE_MODEL_NAME]
        return tuple(dict.fromkeys(names))


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method(
            "autoact", "group", {"mode": "iterative", "reflect": True, **GROUP_ADAPTERS},
            "group planning: the plan, tool and reflect agents, one fine-tuned LoRA adapter each",
        ),
        Method(
            "no-finetune", "group", {"mode": "iterative", "reflect": True, **GROUP_BASE},
            "ablation: group planning with the base model in every role (no adapters: without fine-tuning)",
        ),
        Method(
            "react", "react", {"reflect": False},
            "ReAct with the base model, zero-shot (not fine-tuned; one worked example in the prompt), "
            "no self-reflection",
        ),
        Method(
            "codeact", "codeact", {},
            "CodeAct with the base model, zero-shot: every action is a Python block run in the sandbox, "
            "calling the task's tools as functions (retrieve, lookup, search) and finish(answer)",
        ),
        Method(
            "codeact-ft", "codeact", {"meta_model": "codeact"},
            "CodeAct with its fine-tuned LoRA adapter (trained on the run's own CodeAct trajectories, "
            "`autoact synthesize --action-space code`), no worked examples",
        ),
        Method(
            "cot", "cot", {},
            "chain of thought with the base model: one call, reasoning then the answer, no tools "
            "(image questions show their caption and recognised text)",
        ),
        Method(
            "zero-shot-plan", "plan_solve", {},
            "plan-and-solve with the base model: first a plan (subgoals), then reasoning along it and the "
            "answer; no tools",
        ),
        Method(
            "reflexion", "reflexion", {},
            "ReAct trials with the base model; after a failed trial a verbal self-reflection goes into the next "
            "trial. A trial counts as failed when the environment's reward (the score against the gold answer) "
            "is below 1, as in Reflexion's original setting: an oracle signal the other methods do not get",
        ),
        Method(
            "one-agent", "group", {
                "mode": "iterative", "reflect": True,
                "plan_model": ONE_AGENT, "tool_model": ONE_AGENT, "reflect_model": ONE_AGENT,
            },
            "ablation: group planning with one adapter, trained on all three agents' data, in every role",
        ),
        Method(
            "no-reflect", "group", {"mode": "iterative", "reflect": False, "plan_model": "plan", "tool_model": "tool"},
            "ablation: group planning without the reflect agent (the first answer stands)",
        ),
        Method(
            "one-pass", "group", {"mode": "one_pass", "reflect": True, **GROUP_ADAPTERS},
            "group planning in one-pass mode (Lumos): the plan agent writes every subgoal first, "
            "the tool agent grounds them in order",
        ),
    )
}


class UnknownMethod(ValueError):
    pass


def register_method(method: Method) -> Method:
    """Add ``method`` to :data:`METHODS`: the evaluation, its CLI and the report then
    know it. Its graph must be registered (``autoact.graph.registry``)."""
    graph_kind(method.graph)  # a clear error for an unknown graph, now rather than at evaluation
    if method.name in METHODS or ROUND_METHOD.match(method.name):
        raise ValueError(f"a method named {method.name!r} exists already")
    METHODS[method.name] = method
    return method


def unregister_method(name: str) -> None:
    METHODS.pop(name, None)


ROUND_METHOD = re.compile(r"^autoact-r(\d+)$")


def round_adapter(agent: str, round_number: int) -> str:
    """The served name of a sub-agent's adapter after self-training round ``round_number``
    (round 1 is AutoAct's single training: the plain names plan, tool, reflect)."""
    return agent if round_number == 1 else f"{agent}-r{round_number}"


def round_method(round_number: int) -> Method:
    """``autoact-rN``: group planning with the adapters of self-training round N."""
    return Method(
        f"autoact-r{round_number}", "group",
        {"mode": "iterative", "reflect": True,
         **{key: round_adapter(agent, round_number) for key, agent in GROUP_ADAPTERS.items()}},
        f"group planning with the adapters retrained after self-training round {round_number} (round 1 = autoact): "
        "the unsolved synthesized questions re-solved by the previous round's agents, trained on the union",
    )


def method_named(name: str) -> Method:
    if name in METHODS:
        return METHODS[name]
    match = ROUND_METHOD.match(name)
    if match and int(match.group(1)) >= 2:
        return round_method(int(match.group(1)))
    raise UnknownMethod(f"unknown method {name!r}; methods are {', '.join(METHODS)}, autoact-rN (N >= 2), or all")


def resolve_methods(names: list[str]) -> list[Method]:
    """The methods for ``names`` (``all`` = every method), in the order given."""
    out: list[Method] = []
    for name in names:
        if name == "all":
            out.extend(m for m in METHODS.values() if m not in out)
            continue
        method = method_named(name)
        if method not in out:
            out.append(method)
    if not out:
        raise UnknownMethod("no method given")
    return out


def needed_adapters(methods: list[Method]) -> list[str]:
    return list(dict.fromkeys(a for m in methods for a in m.adapters))
