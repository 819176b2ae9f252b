"""The task environment: reset with a question, step with ``Name[argument]``.

``Finish[answer]`` ends the episode with the reward from ``Task.score`` (None for
a question without gold). ``Reflect[right|wrong]`` comes after Finish and
records the agent's verdict without changing the reward; ``Reflect[wrong]``
reopens the episode so the agent can try again (the group-planning loop goes
back to planning), ``Reflect[right]`` closes it. A malformed action, an unknown
tool or a tool error gives an observation saying what went wrong; ``step``
never raises for anything the agent writes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.retrievers import BaseRetriever

from autoact.actions import (
    ENV_ACTIONS, FINISH, REFLECT, VERDICTS, Action, ActionError, canonical_action, parse_action,
)
from autoact.tools.library import EpisodeContext, tool_library
from autoact.tools.library import tool_names as registered_tools
from autoact.tools.sandbox import PythonSandbox, SandboxLimits
from autoact.tools.tasks import Task, TaskInstance

log = logging.getLogger(__name__)

__all__ = ["StepResult", "TaskEnv"]

@dataclass
class StepResult:
    observation: str
    reward: float | None = 0.0
    done: bool = False
    info: dict[str, Any] = field(default_factory=dict)


class TaskEnv:
    """One episode at a time over ``task`` with the tools named in ``tool_names``."""

    def __init__(
        self,
        task: Task,
        tool_names: list[str] | tuple[str, ...] | None = None,
        *,
        home: Path | str | None = None,
        search_mode: str = "bm25",
        top_k: int = 3,
        sandbox_limits: SandboxLimits | None = None,
        retriever: BaseRetriever | None = None,
    ):
        names = list(task.default_tools if tool_names is None else tool_names)
        unknown = [n for n in names if n not in registered_tools()]
        if unknown:
            raise ValueError(f"unknown tools {unknown}; the library has {', '.join(registered_tools())}")
        self.task = task
        self.tool_names = list(dict.fromkeys(names))
        self.context = EpisodeContext(python=PythonSandbox(sandbox_limits))
        library = tool_library(task, self.context, home=home, search_mode=search_mode, top_k=top_k,
                               retriever=retriever)
        self.tools = {n: library[n] for n in self.tool_names}
        self.instance: TaskInstance | None = None
        self._clear()

    # ---- episode -------------------------------------------------------------------------
    def _clear(self) -> None:
        self.steps = 0
        self.finished = False
        self.done = False
        self.answer: str | None = None
        self.reward: float | None = 0.0
        self.score: dict[str, Any] | None = None
        self.verdicts: list[str] = []

    @property
    def valid_actions(self) -> list[str]:
        """Usage strings of every action available now, tools first."""
        return [self.tools[n].metadata["usage"] for n in self.tool_names] + list(ENV_ACTIONS.values())

    def _action_names(self) -> list[str]:
        return self.tool_names + list(ENV_ACTIONS)

    def reset(self, instance: TaskInstance | str | dict[str, Any]) -> str:
        """Start an episode; ``instance`` may be a TaskInstance, a question id of the
        task, or a dict (``{"question": …}`` for a chat question without gold)."""
        if isinstance(instance, str):
            instance = self.task.get(instance)
        elif isinstance(instance, dict):
            instance = TaskInstance.from_dict(instance)
        if not isinstance(instance, TaskInstance):
            raise TypeError(f"reset() takes a TaskInstance, a question id or a dict, not {type(instance).__name__}")
        self.instance = instance
        self.context.reset(instance)
        self._clear()
        return instance.question

    def _invalid(self, message: str, kind: str) -> StepResult:
        text = f"Invalid action: {message}. Valid actions are: {', '.join(self.valid_actions)}."
        return StepResult(text, 0.0 if not self.finished else self.reward, self.done,
                          {"error": kind, "valid_actions": self.valid_actions, "step": self.steps})

    def step(self, action_text: str) -> StepResult:
        """Read ``Name[argument]`` written by an agent and :meth:`act` on it."""
        if self.instance is None:
            return StepResult("No question is loaded: call reset() first.", None, True, {"error": "no-episode"})
        try:
            action = parse_action(action_text, valid=self._action_names())
        except ActionError as exc:
            self.steps += 1
            return self._invalid(exc.message, exc.kind)
        except Exception as exc:  # noqa: BLE001 - never end the run on agent text
            self.steps += 1
            return self._invalid(f"could not read the action ({exc})", "parse-failure")
        return self.act(action)

    def act(self, action: Action) -> StepResult:
        """One step with an action already read (the graphs parse the model's text once
        and hand the action over): a tool call, ``Finish`` or ``Reflect``."""
        if self.instance is None:
            return StepResult("No question is loaded: call reset() first.", None, True, {"error": "no-episode"})
        self.steps += 1
        name = canonical_action(action.name, self._action_names())
        if name is None:
            return self._invalid(f"Unknown action {action.name!r}", "unknown-action")
        if name == REFLECT:
            return self._reflect(action.argument)
        if self.finished:
            return StepResult(
                f"The episode is finished with the answer {self.answer!r}; only {ENV_ACTIONS[REFLECT]} is accepted now.",
                self.reward, True, {"error": "finished", "step": self.steps},
            )
        if name == FINISH:
            return self._finish(action.argument)
        try:
            observation = str(self.tools[name].invoke(action.argument))
        except Exception as exc:  # noqa: BLE001 - a tool failure is an observation
            log.warning("tool %s failed on %r: %s", name, action.argument, exc)
            observation = f"{name} failed: {type(exc).__name__}: {exc}"
            return StepResult(observation, 0.0, False, {"tool": name, "error": "tool-error", "step": self.steps})
        return StepResult(observation, 0.0, False, {"tool": name, "argument": action.argument, "step": self.steps})

    def _finish(self, answer: str) -> StepResult:
        self.finished = self.done = True
        self.answer = answer
        if self.instance.has_gold:
            scores = self.task.score(answer, self.instance)
            self.score = {k: float(v) for k, v in scores.items() if isinstance(v, (int, float))}
            self.reward = self.score["reward"]
        else:
            self.score, self.reward = None, None
        info = {"answer": answer, "score": self.score, "gold": self.instance.answer, "step": self.steps}
        return StepResult(f"Episode finished with the answer: {answer}", self.reward, True, info)

    def _reflect(self, argument: str) -> StepResult:
        verdict = argument.strip().strip("'\"").lower()
        if verdict not in VERDICTS:
            return self._invalid(f"Reflect takes right or wrong, not {argument!r}", "bad-verdict")
        if not self.finished:
            return self._invalid("Reflect[right|wrong] comes after Finish[answer]", "reflect-before-finish")
        self.verdicts.append(verdict)
        info = {"verdict": verdict, "answer": self.answer, "score": self.score, "step": self.steps}
        if verdict == "wrong":
            # The agent doubts its answer: reopen the episode for another attempt.
            self.finished = self.done = False
            return StepResult("Reflection recorded: the answer may be wrong. Continue solving the question.",
                              self.reward, False, info)
        return StepResult("Reflection recorded: the answer is right.", self.reward, True, info)

    # ---- snapshots ----------------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        """A JSON-serialisable snapshot from which ``set_state`` rebuilds the episode."""
        return {
            "task": self.task.name,
            "tool_names": list(self.tool_names),
            "instance": self.instance.to_dict() if self.instance else None,
            "steps": self.steps,
            "finished": self.finished,
            "done": self.done,
            "answer": self.answer,
            "reward": self.reward,
            "score": self.score,
            "verdicts": list(self.verdicts),
            "tools": self.context.get_state(),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        if state.get("task") not in (None, self.task.name):
            raise ValueError(f"the snapshot belongs to task {state['task']!r}, not {self.task.name!r}")
        names = state.get("tool_names")
        if names is not None and list(names) != self.tool_names:
            raise ValueError(f"the snapshot uses tools {names}, this environment {self.tool_names}")
        raw = state.get("instance")
        self.instance = TaskInstance.from_dict(raw) if raw else None
        self.context.reset(self.instance)
        self.context.set_state(state.get("tools") or {})
        self.steps = int(state.get("steps") or 0)
        self.finished = bool(state.get("finished"))
        self.done = bool(state.get("done"))
        self.answer = state.get("answer")
        self.reward = state.get("reward", 0.0)
        self.score = state.get("score")
        self.verdicts = list(state.get("verdicts") or [])

    @classmethod
    def from_state(cls, task: Task, state: dict[str, Any], **kwargs: Any) -> TaskEnv:
        env = cls(task, state.get("tool_names"), **kwargs)
        env.set_state(state)
        return env
