"""The only place that builds model inputs, for inference and training alike.

Every agent's prompt is a list of chat messages ``[{"role": "system", ...},
{"role": "user", ...}]``: a system message from the agent's template (task, actions,
output format, one worked example from ``examples.yaml``) and a user message with
the question and the episode so far rendered as ``Thought:`` / ``Action:
Name[argument]`` / ``Observation:`` lines.

The graphs call these functions at every model call (chat format), and
:mod:`autoact.prompts.records` calls the very same functions to cut a finished
trajectory into supervised records, so the prompt a sub-agent is trained on is byte
for byte the prompt it sees.

Episode data (see ``autoact.graph.state``): a step is a mapping with ``thought``,
``action`` (a tool name or ``Finish``), ``argument`` and ``observation``; a
reflection has ``thought`` and ``verdict`` (``right``/``wrong``). The j-th
reflection belongs to the j-th ``Finish`` step.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from string import Template
from typing import Any, Iterable, Mapping, Sequence

import yaml

from autoact.actions import FINISH, REFLECT, VERDICTS, format_action

TEMPLATE_DIR = Path(__file__).resolve().parent

#: Line labels of the Thought/Action/Observation protocol (the parsers read them).
THOUGHT = "Thought:"
ACTION = "Action:"
OBSERVATION = "Observation:"
QUESTION = "Question:"

#: Characters of one observation kept in a prompt. SmolLM2-135M has a 2048-token
#: context; at ~4 characters a token, eight steps of history stay near 1000 tokens.
DEFAULT_OBS_CHARS = 400

ToolLike = Any  # a mapping {name, description, usage} or a LangChain tool


class PromptError(ValueError):
    """A builder was given data it cannot render (clear message, never a KeyError)."""


# ---- template files -----------------------------------------------------------
@lru_cache(maxsize=None)
def template(name: str) -> Template:
    path = TEMPLATE_DIR / f"{name}.txt"
    if not path.is_file():
        raise PromptError(f"no prompt template {path}")
    return Template(path.read_text(encoding="utf-8"))


@lru_cache(maxsize=None)
def _yaml(name: str) -> Any:
    return yaml.safe_load((TEMPLATE_DIR / name).read_text(encoding="utf-8"))


def fragment(key: str, **values: Any) -> str:
    """A short piece of prompt text from ``fragments.yaml``, with ``${…}`` filled in."""
    texts = _yaml("fragments.yaml")
    if key not in texts:
        raise PromptError(f"no fragment {key!r} in fragments.yaml")
    try:
        return Template(str(texts[key])).substitute({k: str(v) for k, v in values.items()})
    except KeyError as exc:
        raise PromptError(f"fragment {key!r} needs the value {exc.args[0]!r}") from None


def examples() -> list[dict]:
    return list(_yaml("examples.yaml")["examples"])


def _fill(name: str, **values: Any) -> str:
    try:
        return template(name).substitute({k: str(v) for k, v in values.items()})
    except KeyError as exc:
        raise PromptError(f"template {name}.txt needs the value {exc.args[0]!r}") from None


def _user_text(text: str) -> str:
    # Empty blocks (no history yet, no instruction) leave blank lines: drop them.
    return re.sub(r"\n\s*\n+", "\n", text).strip()


def _messages(system: str, user: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": system.strip()}, {"role": "user", "content": _user_text(user)}]


# ---- tools ----------------------------------------------------------------------
def tool_spec(tool: ToolLike) -> dict[str, str]:
    """``{name, description, usage}`` of a tool given as a mapping or a LangChain tool."""
    if isinstance(tool, Mapping):
        name, description, usage = tool.get("name"), tool.get("description"), tool.get("usage")
    else:
        name = getattr(tool, "name", None)
        description = getattr(tool, "description", None)
        usage = (getattr(tool, "metadata", None) or {}).get("usage")
    if not name:
        raise PromptError(f"a tool needs a name, got {tool!r}")
    return {
        "name": str(name),
        "description": " ".join(str(description or "").split()),
        "usage": str(usage or f"{name}[argument]"),
    }


def tool_specs(tools: Iterable[ToolLike]) -> list[dict[str, str]]:
    specs = [tool_spec(t) for t in tools]
    if any(s["name"] == FINISH for s in specs):
        raise PromptError("Finish is built in; do not pass it as a tool")
    return specs


def action_names(tools: Iterable[ToolLike]) -> list[str]:
    """The valid action names: the tools, then Finish."""
    return [s["name"] for s in tool_specs(tools)] + [FINISH]


def usage_of(action: str, tools: Iterable[ToolLike]) -> str:
    if action == FINISH:
        return fragment("finish_usage")
    for spec in tool_specs(tools):
        if spec["name"] == action:
            return spec["usage"]
    return f"{action}[argument]"


def render_tools(tools: Iterable[ToolLike]) -> str:
    lines = [fragment("tool_line", usage=s["usage"], description=s["description"]) for s in tool_specs(tools)]
    lines.append(fragment("tool_line", usage=fragment("finish_usage"), description=fragment("finish_description")))
    return "\n".join(lines)


# ---- episode rendering ------------------------------------------------------------
def one_line(text: Any) -> str:
    return " ".join(str(text or "").split())


def truncate(text: str, limit: int) -> str:
    text = one_line(text)
    if limit <= 0 or len(text) <= limit:
        return text
    return text[:limit].rstrip() + fragment("truncated")


def plan_target(thought: str, action: str) -> str:
    return f"{THOUGHT} {one_line(thought)}\n{ACTION} {action}"


def reflection_target(reflection: Mapping[str, Any]) -> str:
    verdict = reflection["verdict"]
    if verdict not in VERDICTS:
        raise PromptError(f"a reflection verdict is 'right' or 'wrong', got {verdict!r}")
    return f"{THOUGHT} {one_line(reflection['thought'])}\n{ACTION} {format_action(REFLECT, verdict)}"


def subgoal_lines(subgoals: Sequence[Mapping[str, Any]]) -> str:
    """The one-pass plan: ``Subgoal i: <thought> Action: <name>`` lines."""
    return "\n".join(
        f"Subgoal {i}: {one_line(g['thought'])} {ACTION} {g['action']}" for i, g in enumerate(subgoals, 1)
    )


def check_step(step: Mapping[str, Any]) -> None:
    missing = [k for k in ("thought", "action", "argument") if k not in step]
    if missing:
        raise PromptError(f"a step needs thought, action and argument; {missing} missing in {dict(step)!r}")


def render_history(
    steps: Sequence[Mapping[str, Any]],
    reflections: Sequence[Mapping[str, Any]] = (),
    *,
    obs_chars: int = DEFAULT_OBS_CHARS,
) -> str:
    """The episode as protocol lines. A Finish step is followed by its reflection
    (if any) and, after ``Reflect[wrong]``, by the retry note."""
    lines: list[str] = []
    pending = list(reflections)
    for step in steps:
        check_step(step)
        lines.append(f"{THOUGHT} {one_line(step['thought'])}")
        lines.append(f"{ACTION} {format_action(step['action'], one_line(step['argument']))}")
        if step["action"] == FINISH:
            if pending:
                reflection = pending.pop(0)
                lines.extend(reflection_target(reflection).splitlines())
                if reflection["verdict"] == "wrong":
                    lines.append(f"{OBSERVATION} {fragment('retry')}")
        else:
            lines.append(f"{OBSERVATION} {truncate(step.get('observation', ''), obs_chars)}")
    if pending:
        raise PromptError(f"{len(pending)} reflection(s) without a Finish step to follow")
    return "\n".join(lines)


# ---- worked examples ----------------------------------------------------------------
def select_example(tool_names: Iterable[str]) -> dict:
    """The example whose tools are all selected and that uses the most of them."""
    selected = set(tool_names)
    best, best_score = None, -1
    for example in examples():
        needed = set(example.get("tools") or [])
        if needed <= selected and len(needed) > best_score:
            best, best_score = example, len(needed)
    if best is None:
        raise PromptError("examples.yaml needs an example that uses no tool")
    return best


def default_examples(tool_names: Iterable[str], limit: int = 2) -> list[dict]:
    """Worked examples for a transcript prompt when the task gives none: the best
    fitting multi-hop example, then the best one-hop one (closest to the question,
    since most questions of a task are usually the short kind). An example fits when
    all its tools are selected; more tools used is better, file order breaks ties."""
    selected = set(tool_names)
    fitting = [e for e in examples() if set(e.get("tools") or []) <= selected]
    chosen = []
    for shape in ("multi-hop", "one-hop"):
        candidates = [e for e in fitting if e.get("shape", "one-hop") == shape]
        if candidates:
            chosen.append(max(candidates, key=lambda e: len(e.get("tools") or [])))
    return chosen[-limit:] if limit else []


def _example_step_index(example: dict, key: str) -> int:
    steps = example["steps"]
    return min(int(example.get(key, 1)), len(steps) - 1)


def _example(tools: Sequence[ToolLike]) -> dict:
    return select_example(s["name"] for s in tool_specs(tools))


# ---- the agents' prompts ----------------------------------------------------------------
def react_messages(
    task_description: str,
    tools: Sequence[ToolLike],
    question: str,
    history: Sequence[Mapping[str, Any]] = (),
    reflections: Sequence[Mapping[str, Any]] = (),
    *,
    reflect: bool = False,
    obs_chars: int = DEFAULT_OBS_CHARS,
) -> list[dict[str, str]]:
    """The single ReAct agent: next ``Thought/Action: Name[arg]``, or, with
    ``reflect=True`` (history ends with Finish), ``Thought/Action: Reflect[...]``."""
    example = _example(tools)
    # The example ends at Finish: shown with its reflection, small models took
    # Reflect[...] for the way to answer.
    example_text = _user_text(
        _fill("react_user", question=example["question"], history=render_history(example["steps"]), instruction="")
    )
    system = _fill(
        "react_system", task_description=one_line(task_description), tools=render_tools(tools), example=example_text
    )
    if reflect and (not history or history[-1]["action"] != FINISH):
        raise PromptError("a reflection prompt needs a history that ends with Finish")
    user = _fill(
        "react_user",
        question=one_line(question),
        history=render_history(history, reflections, obs_chars=obs_chars),
        instruction=fragment("react_reflect_instruction") if reflect else "",
    )
    return _messages(system, user)


def _plan_user(question: str, history, reflections, obs_chars: int) -> str:
    return _fill("plan_user", question=one_line(question), history=render_history(history, reflections, obs_chars=obs_chars))


def plan_messages(
    task_description: str,
    tools: Sequence[ToolLike],
    question: str,
    history: Sequence[Mapping[str, Any]] = (),
    reflections: Sequence[Mapping[str, Any]] = (),
    *,
    obs_chars: int = DEFAULT_OBS_CHARS,
) -> list[dict[str, str]]:
    """The plan agent: the next thought and the next action's name."""
    example = _example(tools)
    k = _example_step_index(example, "plan_step")
    step = example["steps"][k]
    system = _fill(
        "plan_system",
        task_description=one_line(task_description),
        tools=render_tools(tools),
        example_input=_user_text(_plan_user(example["question"], example["steps"][:k], (), DEFAULT_OBS_CHARS)),
        example_output=plan_target(step["thought"], step["action"]),
    )
    return _messages(system, _plan_user(question, history, reflections, obs_chars))


def _tool_user(question, history, reflections, thought, action, tools, obs_chars: int) -> str:
    return _fill(
        "tool_user",
        question=one_line(question),
        history=render_history(history, reflections, obs_chars=obs_chars),
        thought=one_line(thought),
        action=action,
        instruction=fragment("tool_instruction", action=action, usage=usage_of(action, tools)),
    )


def tool_messages(
    task_description: str,
    tools: Sequence[ToolLike],
    question: str,
    history: Sequence[Mapping[str, Any]],
    thought: str,
    action: str,
    reflections: Sequence[Mapping[str, Any]] = (),
    *,
    obs_chars: int = DEFAULT_OBS_CHARS,
) -> list[dict[str, str]]:
    """The tool agent: the argument of ``action`` (for Finish: the answer)."""
    if action not in action_names(tools):
        raise PromptError(f"tool_messages: {action!r} is not one of {action_names(tools)}")
    example = _example(tools)
    k = _example_step_index(example, "tool_step")
    step = example["steps"][k]
    system = _fill(
        "tool_system",
        task_description=one_line(task_description),
        tools=render_tools(tools),
        example_input=_user_text(
            _tool_user(example["question"], example["steps"][:k], (), step["thought"], step["action"], tools, DEFAULT_OBS_CHARS)
        ),
        example_output=one_line(step["argument"]),
    )
    return _messages(system, _tool_user(question, history, reflections, thought, action, tools, obs_chars))


def _reflect_user(question, history, reflections, obs_chars: int) -> str:
    if not history or history[-1]["action"] != FINISH:
        raise PromptError("a reflection prompt needs a history that ends with Finish")
    return _fill(
        "reflect_user",
        question=one_line(question),
        history=render_history(history, reflections, obs_chars=obs_chars),
        instruction=fragment("reflect_instruction", answer=one_line(history[-1]["argument"])),
    )


def reflect_messages(
    task_description: str,
    tools: Sequence[ToolLike],
    question: str,
    history: Sequence[Mapping[str, Any]],
    reflections: Sequence[Mapping[str, Any]] = (),
    *,
    obs_chars: int = DEFAULT_OBS_CHARS,
) -> list[dict[str, str]]:
    """The reflect agent: judges the answer of the Finish step that ends ``history``."""
    example = _example(tools)
    system = _fill(
        "reflect_system",
        task_description=one_line(task_description),
        example_input=_user_text(_reflect_user(example["question"], example["steps"], (), DEFAULT_OBS_CHARS)),
        example_output=reflection_target(example["reflection"]),
    )
    return _messages(system, _reflect_user(question, history, reflections, obs_chars))


def _one_pass_user(question, history, reflections, obs_chars: int) -> str:
    return _fill(
        "one_pass_user",
        question=one_line(question),
        history=render_history(history, reflections, obs_chars=obs_chars),
        instruction=fragment("one_pass_replan_instruction" if history else "one_pass_instruction"),
    )


def one_pass_plan_messages(
    task_description: str,
    tools: Sequence[ToolLike],
    question: str,
    history: Sequence[Mapping[str, Any]] = (),
    reflections: Sequence[Mapping[str, Any]] = (),
    *,
    obs_chars: int = DEFAULT_OBS_CHARS,
) -> list[dict[str, str]]:
    """The plan agent in one-pass mode: all subgoals at once (a re-plan after
    ``Reflect[wrong]`` sees the episode so far)."""
    example = _example(tools)
    system = _fill(
        "one_pass_system",
        task_description=one_line(task_description),
        tools=render_tools(tools),
        example_input=_user_text(_one_pass_user(example["question"], (), (), DEFAULT_OBS_CHARS)),
        example_output=subgoal_lines(
            [{"thought": s.get("subgoal", s["thought"]), "action": s["action"]} for s in example["steps"]]
        ),
    )
    return _messages(system, _one_pass_user(question, history, reflections, obs_chars))
