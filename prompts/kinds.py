"""The kinds of agent call, in one table: for each, the prompt builders of both
formats, where the answer stops, the text it opens with, and the sub-agent that
answers it in group planning.

The graphs' prompt and model call (``graph.nodes.begin_turn``, ``graph.calls``) read
a kind here; so do the tests that check the stops a call was sent with. A new kind of
call is one more :class:`CallKind` in :data:`KINDS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from autoact.prompts import builders, transcript
from autoact.prompts.builders import THOUGHT

#: Where a chat answer stops: the model must not write the observation itself, nor
#: start the next question (the tool agent also stops before a new line of the protocol).
_CHAT_STOPS = ("\nObservation", "\nQuestion:")


@dataclass(frozen=True)
class CallKind:
    """One kind of agent call. ``role``: the sub-agent whose adapter answers it in
    group planning (``meta``: the single ReAct agent, the base model). ``chat_prefill``:
    the start of the answer written into the assistant turn before the model continues
    it (vLLM's ``continue_final_message``); every training target of the kind begins
    with it, so training and inference see one token sequence (on SmolLM2-135M, 8 of 8
    ReAct first steps parsed with it against 0 of 8 without). A transcript prompt ends
    with its :attr:`opening` instead."""

    name: str
    role: str
    chat_prompt: Callable[..., list[dict[str, str]]]
    transcript_prompt: Callable[..., str]
    chat_stops: tuple[str, ...]
    transcript_stops: tuple[str, ...]
    chat_prefill: str | None

    @property
    def opening(self) -> str:
        """What the kind's transcript prompt ends with: the start of the line the model writes."""
        return transcript.OPENINGS[self.name]


KINDS: dict[str, CallKind] = {kind.name: kind for kind in (
    CallKind("react", "meta", builders.react_messages, transcript.react_prompt,
             _CHAT_STOPS, _CHAT_STOPS, THOUGHT),
    # the plan agent names the action and stops before its argument
    CallKind("plan", "plan", builders.plan_messages, transcript.plan_prompt,
             _CHAT_STOPS, ("[", *_CHAT_STOPS), THOUGHT),
    # the tool agent writes the argument only (the transcript opened its bracket)
    CallKind("tool", "tool", builders.tool_messages, transcript.tool_prompt,
             (*_CHAT_STOPS[:1], "\nThought", "\nAction", *_CHAT_STOPS[1:]), ("]", "\n"), None),
    CallKind("reflect", "reflect", builders.reflect_messages, transcript.reflect_prompt,
             _CHAT_STOPS, (*_CHAT_STOPS, "\nThought:"), THOUGHT),
    # the one-pass planner writes every subgoal line, up to a blank line
    CallKind("one_pass", "plan", builders.one_pass_plan_messages, transcript.one_pass_prompt,
             _CHAT_STOPS, (*_CHAT_STOPS, "\n\n"), "Subgoal 1:"),
)}

__all__ = ["CallKind", "KINDS"]
