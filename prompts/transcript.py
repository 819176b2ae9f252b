"""Prompts as plain-text transcripts that the model continues (``/v1/completions``).

The default prompt format. Each agent's prompt is one text: a short header (the
agent's job, the task, the actions), optionally worked examples as whole episodes,
then the episode so far as ``Question:`` / ``Thought:`` / ``Action:`` /
``Observation:`` lines, ending with the opening of the line the agent writes:

=========  ==========================  ===================================
agent      prompt ends with            the agent writes (training target)
=========  ==========================  ===================================
react      ``Thought:``                `` t\\nAction: Name[argument]``
plan       ``Thought:``                `` t\\nAction: Name``
tool       ``Thought: t\\nAction: Name[``  ``argument]``
reflect    ``Thought:`` (after Finish)  `` r\\nAction: Reflect[right|wrong]``
one_pass   ``Subgoal 1:``              the rest of the plan
=========  ==========================  ===================================

So plan and tool together write exactly the step the single agent writes, and a
trained sub-agent continues the same text it was trained on (the masking code
tokenises prompt and target separately, as vLLM sees them). Measured on the demo
task with Qwen2.5-Coder 0.5B, this format let the meta-agent extract answers from
observations where chat turns did not (see README, "What each change contributed").

Worked examples are shown to the base model (the meta-agent and the no-finetune
ablation); fine-tuned adapters get none (``examples=()``): they learned the format,
and shorter prompts train faster.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from autoact.prompts.builders import (
    ACTION,
    DEFAULT_OBS_CHARS,
    FINISH,
    QUESTION,
    THOUGHT,
    PromptError,
    _fill,
    action_names,
    fragment,
    one_line,
    render_history,
    render_tools,
    subgoal_lines,
)

#: What each kind's prompt ends with: the start of the line the model writes.
OPENINGS: dict[str, str] = {
    "react": THOUGHT,
    "plan": THOUGHT,
    "reflect": THOUGHT,
    "tool": "[",
    "one_pass": "Subgoal 1:",
}

Example = Mapping[str, Any]


# ---- pieces ---------------------------------------------------------------------------
def episode_text(example: Example, *, reflection: bool = False, obs_chars: int = DEFAULT_OBS_CHARS) -> str:
    """A worked example as a whole transcript, up to Finish (and its reflection)."""
    reflections = [example["reflection"]] if reflection and example.get("reflection") else []
    return f"{QUESTION} {one_line(example['question'])}\n" + render_history(
        example["steps"], reflections, obs_chars=obs_chars
    )


def _header(name: str, task_description: str, tools: Sequence[Any], examples: Sequence[Example],
            reflection: bool = False) -> str:
    text = _fill(name, task_description=one_line(task_description), tools=render_tools(tools)).strip()
    shown = [episode_text(e, reflection=reflection) for e in examples]
    return "\n\n".join([text, *shown])


def _episode(question: str, history: Sequence[Mapping[str, Any]], reflections: Sequence[Mapping[str, Any]],
             obs_chars: int) -> str:
    lines = [f"{QUESTION} {one_line(question)}"]
    rendered = render_history(history, reflections, obs_chars=obs_chars)
    if rendered:
        lines.append(rendered)
    return "\n".join(lines)


def _needs_finish(history: Sequence[Mapping[str, Any]]) -> None:
    if not history or history[-1]["action"] != FINISH:
        raise PromptError("a reflection prompt needs a history that ends with Finish")


# ---- the agents' prompts ----------------------------------------------------------------
def react_prompt(
    task_description: str,
    tools: Sequence[Any],
    question: str,
    history: Sequence[Mapping[str, Any]] = (),
    reflections: Sequence[Mapping[str, Any]] = (),
    *,
    reflect: bool = False,
    examples: Sequence[Example] = (),
    obs_chars: int = DEFAULT_OBS_CHARS,
    reflection_examples: bool = True,
) -> str:
    """The single agent's next step, or (``reflect=True``, after Finish) its reflection.

    Its reflection prompt shows the examples with their reflections: without one
    to follow, the 0.5B meta-agent judged most right answers wrong (and then wrote
    ``Finish[wrong]``). Its step prompt shows them without (small models took
    ``Reflect[...]`` for the way to answer), so the two calls share no example text."""
    episode = _episode(question, history, reflections, obs_chars)
    if reflect:
        _needs_finish(history)
        episode += "\n" + fragment("react_reflect_instruction")
    header = _header("transcript_react", task_description, tools, examples, reflection=reflect and reflection_examples)
    return f"{header}\n\n{episode}\n{OPENINGS['react']}"


def plan_prompt(
    task_description: str,
    tools: Sequence[Any],
    question: str,
    history: Sequence[Mapping[str, Any]] = (),
    reflections: Sequence[Mapping[str, Any]] = (),
    *,
    examples: Sequence[Example] = (),
    obs_chars: int = DEFAULT_OBS_CHARS,
) -> str:
    """The plan agent: the next thought and the next action's name."""
    header = _header("transcript_plan", task_description, tools, examples)
    return f"{header}\n\n{_episode(question, history, reflections, obs_chars)}\n{OPENINGS['plan']}"


def tool_prompt(
    task_description: str,
    tools: Sequence[Any],
    question: str,
    history: Sequence[Mapping[str, Any]],
    thought: str,
    action: str,
    reflections: Sequence[Mapping[str, Any]] = (),
    *,
    examples: Sequence[Example] = (),
    obs_chars: int = DEFAULT_OBS_CHARS,
) -> str:
    """The tool agent: the argument of ``action`` (for Finish: the answer), then ``]``."""
    if action not in action_names(tools):
        raise PromptError(f"tool_prompt: {action!r} is not one of {action_names(tools)}")
    header = _header("transcript_tool", task_description, tools, examples)
    episode = _episode(question, history, reflections, obs_chars)
    return f"{header}\n\n{episode}\n{THOUGHT} {one_line(thought)}\n{ACTION} {action}{OPENINGS['tool']}"


def reflect_prompt(
    task_description: str,
    tools: Sequence[Any],
    question: str,
    history: Sequence[Mapping[str, Any]],
    reflections: Sequence[Mapping[str, Any]] = (),
    *,
    examples: Sequence[Example] = (),
    obs_chars: int = DEFAULT_OBS_CHARS,
) -> str:
    """The reflect agent: judges the answer of the Finish step that ends ``history``."""
    _needs_finish(history)
    header = _header("transcript_reflect", task_description, tools, examples, reflection=True)
    return f"{header}\n\n{_episode(question, history, reflections, obs_chars)}\n{OPENINGS['reflect']}"


def one_pass_prompt(
    task_description: str,
    tools: Sequence[Any],
    question: str,
    history: Sequence[Mapping[str, Any]] = (),
    reflections: Sequence[Mapping[str, Any]] = (),
    *,
    examples: Sequence[Example] = (),
    obs_chars: int = DEFAULT_OBS_CHARS,
) -> str:
    """The plan agent in one-pass mode: every subgoal at once (after ``Reflect[wrong]``
    a new plan for the rest, seeing the episode so far)."""
    header = _fill("transcript_one_pass", task_description=one_line(task_description), tools=render_tools(tools)).strip()
    shown = [
        f"{QUESTION} {one_line(e['question'])}\n"
        + subgoal_lines([{"thought": s.get("subgoal", s["thought"]), "action": s["action"]} for s in e["steps"]])
        for e in examples
    ]
    episode = _episode(question, history, reflections, obs_chars)
    if history:
        episode += "\n" + fragment("one_pass_replan_instruction")
    return "\n\n".join([header, *shown, episode]) + "\n" + OPENINGS["one_pass"]


__all__ = [
    "OPENINGS", "episode_text", "one_pass_prompt", "plan_prompt", "react_prompt", "reflect_prompt", "tool_prompt",
]
