"""Cut a finished trajectory into training records, one list per sub-agent.

Each record's prompt is made by the kind's own builder (:data:`prompts.kinds.KINDS`),
the very function the graphs call at inference, so the prompt a sub-agent is trained
on is byte for byte the prompt it sees. For step i of the trajectory:

* plan: the prompt at history ``steps[:i]``, target ``Thought: t_i\\nAction: a_i``;
* tool: the prompt at that history with ``t_i``, ``a_i``, target the argument (for
  Finish, the answer);
* reflect (after the j-th Finish): the prompt at the history up to it, target
  ``Thought: r_j\\nAction: Reflect[verdict_j]``.

In the transcript format a record is ``{"id", "agent", "format": "transcript",
"prompt", "completion"}`` (the completion continues the prompt's opening: the plan
target without ``Thought:``, the tool's argument with the closing ``]``); in the chat
format ``{"id", "agent", "messages"}`` whose last message is the assistant target.
Fine-tuned adapters' transcript prompts carry no worked examples. Steps the graph
recorded as invalid (unknown action, empty argument) stay in the history of later
records but give no record of their own. Record ids are ``{record_id}/{agent}/{index}``.

The one-pass planner is served by the ``plan`` adapter, trained on these iterative
plan records: no one-pass records are cut.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from autoact.actions import FINISH
from autoact.prompts.builders import (
    DEFAULT_OBS_CHARS, PromptError, action_names, check_step, one_line, plan_target, reflection_target,
)
from autoact.prompts.kinds import KINDS
from autoact.settings import AGENTS

FORMATS = ("transcript", "chat")


def training_points(
    trajectory: Sequence[Mapping[str, Any]], tools: Sequence[Any], reflections: Sequence[Mapping[str, Any]] = ()
):
    """The points of a finished trajectory that become training records, in order:
    ``("step", i, history, reflections before, step)`` for every valid step i, then
    ``("reflection", j, history up to the j-th Finish, reflections before, reflection)``."""
    steps = list(trajectory)
    for step in steps:
        check_step(step)
    valid = set(action_names(tools))
    finishes = [i for i, s in enumerate(steps) if s["action"] == FINISH]
    if len(reflections) > len(finishes):
        raise PromptError(f"{len(reflections)} reflections but only {len(finishes)} Finish steps")
    for i, step in enumerate(steps):
        if step["action"] in valid:
            done = sum(1 for s in steps[:i] if s["action"] == FINISH)
            yield "step", i, steps[:i], list(reflections[:done]), step
    for j, (reflection, f) in enumerate(zip(reflections, finishes)):
        yield "reflection", j, steps[: f + 1], list(reflections[:j]), reflection


def _target(agent: str, item: Mapping[str, Any]) -> str:
    """What the agent writes at this point, whole (the chat target)."""
    if agent == "plan":
        return plan_target(item["thought"], item["action"])
    if agent == "tool":
        return one_line(item["argument"])
    return reflection_target(item)


def _completion(agent: str, target: str) -> str:
    """The target after the transcript prompt's opening (which it begins with), or,
    for the tool agent, the argument and the bracket that closes it."""
    if agent == "tool":
        return f"{target}]"
    opening = KINDS[agent].opening
    return target[len(opening):] if target.startswith(opening) else target


def training_records(
    trajectory: Sequence[Mapping[str, Any]],
    task_description: str,
    tools: Sequence[Any],
    question: str,
    reflections: Sequence[Mapping[str, Any]] = (),
    *,
    prompt_format: str = "transcript",
    record_id: str = "trajectory",
    agents: Sequence[str] = AGENTS,
    obs_chars: int = DEFAULT_OBS_CHARS,
) -> dict[str, list[dict]]:
    """The records of ``agents`` (plan, tool, reflect) in ``prompt_format``."""
    if prompt_format not in FORMATS:
        raise PromptError(f"unknown prompt format {prompt_format!r}; use {' or '.join(FORMATS)}")
    unknown = set(agents) - set(AGENTS)
    if unknown:
        raise PromptError(f"unknown agents {sorted(unknown)}; records are cut for {', '.join(AGENTS)}")
    out: dict[str, list[dict]] = {agent: [] for agent in agents}

    def add(agent: str, index: int, history: list, before: list, item: Mapping[str, Any], **extra: Any) -> None:
        kind = KINDS[agent]
        target = _target(agent, item)
        record: dict[str, Any] = {"id": f"{record_id}/{agent}/{index}", "agent": agent}
        if prompt_format == "chat":
            prompt = kind.chat_prompt(task_description, tools, question, history=history, reflections=before,
                                      obs_chars=obs_chars, **extra)
            record["messages"] = [*prompt, {"role": "assistant", "content": target}]
        else:
            prompt = kind.transcript_prompt(task_description, tools, question, history=history, reflections=before,
                                            obs_chars=obs_chars, **extra)
            record.update(format="transcript", prompt=prompt, completion=_completion(agent, target))
        out[agent].append(record)

    for point, index, history, before, item in training_points(trajectory, tools, reflections):
        if point == "reflection":
            if "reflect" in out:
                add("reflect", index, history, before, item)
            continue
        if "plan" in out:
            add("plan", index, history, before, item)
        if "tool" in out and one_line(item["argument"]):
            add("tool", index, history, before, item, thought=item["thought"], action=item["action"])
    return out


__all__ = ["FORMATS", "training_points", "training_records"]
