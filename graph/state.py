"""Typed state of the ReAct and group-planning graphs.

``typing_extensions.TypedDict`` (not ``typing.TypedDict``): LangServe on Python 3.11
builds its schemas from these types and needs the backport.

A chat turn goes in as ``messages`` (the question is the last human message) with an
optional ``instance`` (a TaskInstance as a dict: gold answer, choices, image fields),
(when given, its question is the one the episode answers) and comes out with the answer appended to ``messages`` as an AI message plus the
episode: ``trajectory``, ``reflections``, ``answer``, ``reward``, ``halt_reason``
and ``usage``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages
from typing_extensions import NotRequired, TypedDict

Verdict = Literal["right", "wrong"]

#: Why an episode ended.
#: ``finish`` an answer was given (and, with reflection on, judged right);
#: ``max_reflections`` the last answer was judged wrong and no retry was left;
#: ``max_steps`` the step limit was reached; ``context`` the next prompt would not
#: fit the model's context; ``parse_error`` too many outputs in a row could not be
#: read as an action.
HaltReason = Literal["finish", "max_reflections", "max_steps", "context", "parse_error"]


class Step(TypedDict):
    """One step of an episode.

    ``action`` is a tool name or ``Finish``; ``argument`` is the tool's input (the
    answer, for Finish); ``observation`` is what the tool returned (empty for
    Finish). A step the model got wrong keeps what was read of it (an unknown
    action name, an empty argument) and the observation says what was wrong.
    """

    thought: str
    action: str
    argument: str
    observation: str


class Reflection(TypedDict):
    """The judgement after a Finish step: the j-th reflection follows the j-th Finish."""

    thought: str
    verdict: Verdict


class Subgoal(TypedDict):
    """One line of a one-pass plan: the subgoal text and the action that reaches it."""

    thought: str
    action: str


class RoleUsage(TypedDict):
    """Model calls of one role and their token counts (from the responses' usage
    metadata; ``prompt_chars`` lets the graph estimate the next prompt's tokens)."""

    calls: int
    prompt_tokens: int
    completion_tokens: int
    prompt_chars: int


class InputState(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]
    instance: NotRequired[dict[str, Any] | None]


class OutputState(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]
    question: NotRequired[str]
    trajectory: NotRequired[list[Step]]
    reflections: NotRequired[list[Reflection]]
    answer: NotRequired[str | None]
    reward: NotRequired[float | None]
    score: NotRequired[dict[str, float] | None]
    halt_reason: NotRequired[HaltReason | None]
    usage: NotRequired[dict[str, RoleUsage]]


class AgentState(OutputState):
    """Everything a run carries. Besides the input and the output: the environment
    snapshot (``TaskEnv.get_state()``) so the execute node can rebuild the environment,
    the step between the plan/act node and the execute node (``pending``), the rest of
    a one-pass plan (``subgoals``) and the count of unreadable outputs in a row."""

    instance: NotRequired[dict[str, Any] | None]
    env_state: NotRequired[dict[str, Any] | None]
    pending: NotRequired[Step | None]
    subgoals: NotRequired[list[Subgoal]]
    invalid_streak: NotRequired[int]
