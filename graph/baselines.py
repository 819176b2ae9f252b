"""Baseline graphs for evaluation: chain of thought, plan-and-solve and Reflexion.

All three run on the base model (role ``meta``; ``meta_model`` in the context may
name another served model) and end in the same state as the project's own graphs:
``answer``, ``reward``/``score`` against the instance's gold answer, ``trajectory``,
``usage`` per role and ``halt_reason``.

* **CoT** (``build_cot_graph``): one call, no tools; the model reasons, then writes
  ``Answer: …``. An image question shows its caption and recognised text.
* **Plan-and-solve** (``build_plan_solve_graph``): two calls, no tools; the model first
  writes a plan (``Subgoal i:`` lines), then carries it out and answers.
* **Reflexion** (``build_reflexion_graph``): ReAct trials (the ReAct graph, its own
  Reflect step off). A trial *fails* when the environment's reward, i.e. the score
  against the gold answer, is below ``success_reward`` — the signal of Reflexion's
  original HotpotQA setting, which no agent has at deployment time. After a failed
  trial the model writes a verbal self-reflection, and the notes so far go into the
  next trial's question, up to ``max_trials`` trials. A question without gold gets
  one trial.

The model calls reuse the call kinds of the project's agents (their stop sequences
and prefills, see :mod:`autoact.prompts.builders`), so no new kind is needed:
"react" (stops before an invented observation or question, opens with ``Thought:``)
for reasoning, "one_pass" (opens with ``Subgoal 1:``) for the plan, "reflect" for the
self-reflection.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage
from langgraph.graph import END, START, StateGraph
from langgraph.types import Checkpointer, Command
from pydantic import Field
from typing_extensions import NotRequired

from autoact.prompts import baseline_builders as bb
from autoact.prompts.builders import FINISH, one_line
from autoact.settings import Settings
from autoact.usage import merge_usage

from .context import ReactContext
from .calls import ContextOverflow, Deps, ask_model, node
from .environment import Backend, default_backend, instance_dict
from .models import ModelResolver
from .nodes import (
    finalize_logic,
    last_question,
    over_budget,
    prompt_chars,
    record_usage,
    response_text,
    task_and_tools,
)
from .react import build_react_graph
from .state import AgentState, InputState, OutputState

ROLE = "meta"
REASON_KIND = "react"
PLAN_KIND = "one_pass"
REFLEXION_KIND = "reflect"
#: Tokens allowed for a reasoning or planning call, at least (the agents' default of
#: 128 often cuts a chain of thought before its answer line).
MIN_REASONING_TOKENS = 256
#: Subgoals kept from a plan.
MAX_PLAN_STEPS = 8
#: Characters of a self-reflection kept as a note (small models ramble on).
NOTE_CHARS = 300
#: The pseudo-action that records a plan in the trajectory.
PLAN_ACTION = "Plan"


class ReflexionContext(ReactContext):
    """Settings of the Reflexion baseline: ReAct trials with verbal self-reflection."""

    max_trials: int = Field(2, ge=1, le=10, description="ReAct trials at most (1 = plain ReAct)")
    success_reward: float = Field(
        1.0, gt=0.0, le=1.0,
        description="a trial succeeds when the environment's reward (score against the gold answer) reaches this",
    )


class BaselineOutput(OutputState):
    plan: NotRequired[list[str]]
    notes: NotRequired[list[str]]
    trials: NotRequired[list[dict[str, Any]]]


class BaselineState(AgentState):
    plan: NotRequired[list[str]]
    notes: NotRequired[list[str]]
    trials: NotRequired[list[dict[str, Any]]]


# ---- reading answers -------------------------------------------------------------------------
_ANSWER = re.compile(r"^\W*(?:final\s+)?answer\s*[:：]\s*(.*)$", re.IGNORECASE)
_FINISH = re.compile(r"\bfinish\s*\[(.*?)\]", re.IGNORECASE | re.DOTALL)
_ANSWER_IS = re.compile(r"\banswer is\s*[:]?\s*(.+?)(?:\.\s|\.$|\n|$)", re.IGNORECASE)
_LABEL = re.compile(r"^\s*thought\s*\d*\s*:\s*", re.IGNORECASE)
_SUBGOAL = re.compile(r"^\W*(?:subgoal|step)\s*\d+\s*[:.)\-]\s*(.+)$", re.IGNORECASE)


def _clean_answer(text: str) -> str:
    text = one_line(text).strip().strip("*`").strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1].strip()
    return text


def parse_reasoned_answer(text: str) -> tuple[str, str | None]:
    """(reasoning, answer) of ``Thought: …`` / ``Answer: …``; the answer is None when
    none can be read. Also accepted: ``Finish[answer]`` and "the answer is …"."""
    lines = (text or "").replace("\r", "").split("\n")
    for i, line in enumerate(lines):
        match = _ANSWER.match(line)
        if match:
            answer = match.group(1).strip()
            if not answer:  # "Answer:" alone, the answer on the next line
                answer = next((rest.strip() for rest in lines[i + 1:] if rest.strip()), "")
            thought = _LABEL.sub("", " ".join(lines[:i]).strip())
            answer = _clean_answer(answer)
            return one_line(thought), answer or None
    thought = one_line(_LABEL.sub("", text or ""))
    for pattern in (_FINISH, _ANSWER_IS):
        match = pattern.search(text or "")
        if match and _clean_answer(match.group(1)):
            return thought, _clean_answer(match.group(1))
    return thought, None


def parse_plan_text(text: str) -> list[str]:
    """The subgoal texts of a plan (``Subgoal i: …`` or ``Step i: …`` lines); without
    such lines, the non-empty lines as they are."""
    lines = [line.strip() for line in (text or "").replace("\r", "").split("\n") if line.strip()]
    goals = [m.group(1).strip() for m in map(_SUBGOAL.match, lines) if m and m.group(1).strip()]
    if not goals:
        goals = [_LABEL.sub("", line) for line in lines if not _ANSWER.match(line)]
    # small models repeat a line until the token limit: keep each subgoal once
    return list(dict.fromkeys(one_line(g) for g in goals if one_line(g)))[:MAX_PLAN_STEPS]


# ---- shared pieces -----------------------------------------------------------------------------
def _question(state: BaselineState) -> str:
    question = last_question(state.get("messages", []))
    data = state.get("instance") or {}
    if not question and data.get("question"):
        question = str(data["question"]).strip()
    if not question:
        raise ValueError("no question: send a human message (or an instance with a question)")
    return question


def _instance(state: BaselineState, deps: Deps) -> tuple[Any, dict[str, Any], str]:
    """(instance, as a dict, the question text to show): the state's instance (its own
    text, which carries the options of a multiple-choice question), else the message."""
    question = _question(state)
    instance = deps.backend.instance(state.get("instance") or None, question)
    data = instance_dict(instance)
    return instance, data, str(data.get("question") or question)


def _budget(context: ReactContext, deps: Deps) -> int:
    return max(context.max_tokens or deps.models.settings.sampling_for(ROLE).max_tokens, MIN_REASONING_TOKENS)


def _ended(reason: str, update: dict[str, Any]) -> Command:
    return Command(goto="finalize", update={**update, "halt_reason": reason})


async def _answered(deps: Deps, task: Any, instance: Any, thought: str, answer: str | None, steps: list, update: dict):
    """The final update for a no-tool baseline: a Finish step when there is an answer."""
    if answer is None:
        return _ended("parse_error", {**update, "trajectory": steps, "answer": None, "reward": None, "score": None})
    scored = await asyncio.to_thread(lambda: deps.backend.score(task, instance, answer))
    steps = [*steps, {"thought": thought, "action": FINISH, "argument": answer, "observation": ""}]
    return _ended("finish", {
        **update, "trajectory": steps, "answer": answer, "score": scored,
        "reward": scored.get("reward") if scored else None,
    })


# ---- chain of thought ---------------------------------------------------------------------------
async def cot(state: BaselineState, context: ReactContext, deps: Deps):
    task = await asyncio.to_thread(lambda: deps.backend.task(context))
    instance, data, question = _instance(state, deps)
    base = {"question": question, "instance": data, "reflections": [], "usage": {}}
    messages = bb.cot_messages(
        task.description, question, context=bb.instance_context(data), multiple_choice=bool(data.get("choices"))
    )
    budget = _budget(context, deps)
    if over_budget(messages, {}, context, deps, ROLE, max_tokens=budget):
        return _ended("context", {**base, "trajectory": [], "answer": None, "reward": None, "score": None})
    response = await ask_model(context, deps, ROLE, REASON_KIND, messages, max_tokens=budget)
    if isinstance(response, ContextOverflow):
        return _ended("context", {**base, "trajectory": [], "answer": None, "reward": None, "score": None})
    usage = record_usage({}, ROLE, response, prompt_chars(messages))
    thought, answer = parse_reasoned_answer(response_text(response))
    return await _answered(deps, task, instance, thought, answer, [], {**base, "usage": usage})


# ---- plan and solve -------------------------------------------------------------------------------
async def make_plan(state: BaselineState, context: ReactContext, deps: Deps):
    task = await asyncio.to_thread(lambda: deps.backend.task(context))
    _, data, question = _instance(state, deps)
    base = {"question": question, "instance": data, "reflections": [], "trajectory": [], "usage": {}, "plan": []}
    messages = bb.plan_solve_plan_messages(
        task.description, question, context=bb.instance_context(data), multiple_choice=bool(data.get("choices"))
    )
    budget = _budget(context, deps)
    if over_budget(messages, {}, context, deps, ROLE, max_tokens=budget):
        return _ended("context", {**base, "answer": None, "reward": None, "score": None})
    response = await ask_model(context, deps, ROLE, PLAN_KIND, messages, max_tokens=budget)
    if isinstance(response, ContextOverflow):
        return _ended("context", {**base, "answer": None, "reward": None, "score": None})
    usage = record_usage({}, ROLE, response, prompt_chars(messages))
    plan = parse_plan_text(response_text(response))
    step = {"thought": bb.plan_lines(plan), "action": PLAN_ACTION, "argument": "", "observation": ""}
    return Command(goto="solve", update={**base, "usage": usage, "plan": plan, "trajectory": [step]})


async def solve(state: BaselineState, context: ReactContext, deps: Deps):
    task = await asyncio.to_thread(lambda: deps.backend.task(context))
    instance, data, question = _instance(state, deps)
    usage, steps = state.get("usage", {}), list(state.get("trajectory", []))
    messages = bb.plan_solve_answer_messages(
        task.description, question, state.get("plan") or [],
        context=bb.instance_context(data), multiple_choice=bool(data.get("choices")),
    )
    budget = _budget(context, deps)
    if over_budget(messages, usage, context, deps, ROLE, max_tokens=budget):
        return _ended("context", {"answer": None, "reward": None, "score": None})
    response = await ask_model(context, deps, ROLE, REASON_KIND, messages, max_tokens=budget)
    if isinstance(response, ContextOverflow):
        return _ended("context", {"answer": None, "reward": None, "score": None})
    usage = record_usage(usage, ROLE, response, prompt_chars(messages))
    thought, answer = parse_reasoned_answer(response_text(response))
    return await _answered(deps, task, instance, thought, answer, steps, {"usage": usage})


# ---- Reflexion -----------------------------------------------------------------------------------------
async def reflexion_start(state: BaselineState, context: ReflexionContext, deps: Deps):
    _, data, question = _instance(state, deps)
    return Command(goto="trial", update={
        "question": question, "instance": data, "trajectory": [], "reflections": [], "answer": None,
        "reward": None, "score": None, "halt_reason": None, "usage": {}, "notes": [], "trials": [],
    })


def _trial_inputs(state: BaselineState, context: ReflexionContext) -> tuple[dict, dict]:
    """The ReAct graph's input (the question plus the notes so far) and context."""
    data = dict(state["instance"])
    data["question"] = bb.reflexion_question(state["question"], state.get("notes") or [])
    react_context = {k: v for k, v in context.model_dump().items() if k in ReactContext.model_fields}
    react_context["reflect"] = False  # the environment's reward judges a trial, not the model
    return {"messages": [HumanMessage(data["question"])], "instance": data}, react_context


def _after_trial(state: BaselineState, context: ReflexionContext, out: dict) -> Command:
    trial = {
        "answer": out.get("answer"),
        "reward": out.get("reward"),
        "score": out.get("score"),
        "halt_reason": out.get("halt_reason"),
        "trajectory": list(out.get("trajectory") or []),
        "usage": out.get("usage") or {},
    }
    trials = [*state.get("trials", []), trial]
    update = {
        "trials": trials,
        "trajectory": trial["trajectory"],
        "answer": trial["answer"],
        "reward": trial["reward"],
        "score": trial["score"],
        "halt_reason": trial["halt_reason"],
        "usage": merge_usage(state.get("usage", {}), trial["usage"]),
    }
    reward = trial["reward"]
    no_gold = not (state.get("instance") or {}).get("answer") and "answer_index" not in (
        (state.get("instance") or {}).get("meta") or {}
    )
    succeeded = reward is not None and reward >= context.success_reward
    if succeeded or no_gold or len(trials) >= context.max_trials:
        return Command(goto="finalize", update=update)
    return Command(goto="self_reflect", update=update)


def trial_logic(react: Any):
    """The trial node: one run of the ReAct graph ``react`` on the question plus the notes so far."""

    async def trial(state: BaselineState, context: ReflexionContext, deps: Deps) -> Command:
        inputs, react_context = _trial_inputs(state, context)
        return _after_trial(state, context, await react.ainvoke(inputs, context=react_context))

    return trial


def short_note(text: str) -> str:
    """The reflection as a note: its first two sentences, at most ``NOTE_CHARS``."""
    text = one_line(_LABEL.sub("", (text or "").split("\nAction")[0]))
    sentences = re.split(r"(?<=[.!?])\s+", text)
    note = " ".join(sentences[:2])
    return note if len(note) <= NOTE_CHARS else note[:NOTE_CHARS].rsplit(" ", 1)[0] + " …"


async def self_reflect(state: BaselineState, context: ReflexionContext, deps: Deps):
    task, tools = await task_and_tools(context, deps)
    trial = (state.get("trials") or [{}])[-1]
    messages = bb.reflexion_messages(
        task.description, tools, state["question"], trial.get("trajectory") or [],
        trial.get("answer"), trial.get("halt_reason"), obs_chars=context.observation_chars,
    )
    usage = state.get("usage", {})
    if over_budget(messages, usage, context, deps, ROLE):
        return Command(goto="trial", update={})  # no room to reflect: try again without a new note
    response = await ask_model(context, deps, ROLE, REFLEXION_KIND, messages)
    if isinstance(response, ContextOverflow):
        return Command(goto="trial", update={})
    usage = record_usage(usage, ROLE, response, prompt_chars(messages))
    note = short_note(response_text(response))
    notes = [*state.get("notes", []), note] if note else list(state.get("notes", []))
    return Command(goto="trial", update={"notes": notes, "usage": usage})


# ---- builders ------------------------------------------------------------------------------------
def _deps(models, settings, backend, schema) -> Deps:
    return Deps(ModelResolver(models, settings), backend or default_backend(), schema)


def _graph(schema) -> StateGraph:
    return StateGraph(BaselineState, context_schema=schema, input_schema=InputState, output_schema=BaselineOutput)


def build_cot_graph(
    models: dict[str, BaseChatModel] | None = None,
    *,
    backend: Backend | None = None,
    settings: Settings | None = None,
    checkpointer: Checkpointer = None,
    name: str = "cot",
):
    """Chain of thought without tools: ``start -> answer -> finalize``.
    ``models``: ``{"meta": chat model}`` to inject (else from the context)."""
    deps = _deps(models, settings, backend, ReactContext)
    graph = _graph(ReactContext)
    graph.add_node("answer", node(cot, deps), destinations=("finalize",))
    graph.add_node("finalize", node(finalize_logic, deps))
    graph.add_edge(START, "answer")
    graph.add_edge("finalize", END)
    return graph.compile(checkpointer=checkpointer, name=name)


def build_plan_solve_graph(
    models: dict[str, BaseChatModel] | None = None,
    *,
    backend: Backend | None = None,
    settings: Settings | None = None,
    checkpointer: Checkpointer = None,
    name: str = "plan_solve",
):
    """Plan-and-solve without tools: ``plan -> solve -> finalize``."""
    deps = _deps(models, settings, backend, ReactContext)
    graph = _graph(ReactContext)
    graph.add_node("plan", node(make_plan, deps), destinations=("solve", "finalize"))
    graph.add_node("solve", node(solve, deps), destinations=("finalize",))
    graph.add_node("finalize", node(finalize_logic, deps))
    graph.add_edge(START, "plan")
    graph.add_edge("finalize", END)
    return graph.compile(checkpointer=checkpointer, name=name)


TrialTarget = Literal["self_reflect", "finalize"]


def build_reflexion_graph(
    models: dict[str, BaseChatModel] | None = None,
    *,
    backend: Backend | None = None,
    settings: Settings | None = None,
    checkpointer: Checkpointer = None,
    name: str = "reflexion",
):
    """Reflexion: ``start -> trial -> (self_reflect -> trial)* -> finalize``, the trials
    run by the ReAct graph (built here on the same models and backend)."""
    backend = backend or default_backend()
    deps = _deps(models, settings, backend, ReflexionContext)
    react = build_react_graph(models, backend=backend, settings=settings, name="reflexion_trial")
    graph = _graph(ReflexionContext)
    graph.add_node("start", node(reflexion_start, deps), destinations=("trial",))
    graph.add_node("trial", node(trial_logic(react), deps),
                   destinations=TrialTarget.__args__)
    graph.add_node("self_reflect", node(self_reflect, deps), destinations=("trial",))
    graph.add_node("finalize", node(finalize_logic, deps))
    graph.add_edge(START, "start")
    graph.add_edge("finalize", END)
    return graph.compile(checkpointer=checkpointer, name=name)


__all__ = [
    "BaselineOutput",
    "ReflexionContext",
    "build_cot_graph",
    "build_plan_solve_graph",
    "build_reflexion_graph",
    "merge_usage",
    "parse_plan_text",
    "parse_reasoned_answer",
    "short_note",
]
