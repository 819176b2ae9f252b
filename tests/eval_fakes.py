"""A chat model for runner tests that answers by the question it is asked, so that
concurrent episodes get their own replies in any order, and that can be told to
fail on some questions (a server error) to test resuming; and hand-built trajectory
steps, as the graphs record them, for the self-debugging figures."""

from __future__ import annotations

import threading
from collections import Counter

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, ChatResult


class KeyedChatModel(BaseChatModel):
    """``replies``: question text -> reply. The question is found in the last human
    message; ``failing`` questions raise; ``asked`` counts calls per question."""

    replies: dict[str, str]
    failing: set[str] = set()
    asked: Counter = Counter()
    lock: object = None

    def model_post_init(self, __context) -> None:
        self.lock = threading.Lock()
        self.asked = Counter()

    @property
    def _llm_type(self) -> str:
        return "keyed"

    def _question(self, messages) -> str:
        text = next(str(m.content) for m in reversed(messages) if m.type == "human")
        found = [q for q in self.replies if q in text]
        if not found:
            raise AssertionError(f"no scripted reply for a prompt ending {text[-120:]!r}")
        return max(found, key=len)

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        question = self._question(messages)
        with self.lock:
            self.asked[question] += 1
        if question in self.failing:
            raise RuntimeError(f"server error on {question!r}")
        text = self.replies[question]
        prompt_tokens = sum(len(str(m.content)) for m in messages) // 4
        usage = {"input_tokens": prompt_tokens, "output_tokens": len(text) // 4 + 1,
                 "total_tokens": prompt_tokens + len(text) // 4 + 1}
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text, usage_metadata=usage))])


def step(action: str, argument: str, observation: str = "") -> dict:
    """A text-action step (ReAct, group planning, Reflexion)."""
    return {"thought": "t", "action": action, "argument": argument, "observation": observation}


def code(argument: str, status: str | None = None) -> dict:
    """A CodeAct turn: ``status`` is the sandbox's (none for a turn without a block, or an old record)."""
    turn = {"thought": "t", "action": "Code", "argument": argument, "observation": "o"}
    return {**turn, "status": status} if status else turn


def finish(answer: str) -> dict:
    return {"thought": "t", "action": "Finish", "argument": answer, "observation": ""}
