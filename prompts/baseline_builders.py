"""Model inputs of the evaluation baselines that are not the project's own agents.

Chain of thought (one call, no tools), plan-and-solve (a plan, then the answer; no
tools) and Reflexion (the self-reflection written after a failed ReAct trial, and
the question with those notes carried into the next trial). The templates are the
``cot_*``, ``plan_solve_*`` and ``reflexion_*`` files beside this module; the worked
examples are in ``baseline_examples.yaml`` and short texts in
``baseline_fragments.yaml``. ReAct trials themselves use
:func:`autoact.prompts.builders.react_messages`, unchanged.
"""

from __future__ import annotations

from functools import lru_cache
from string import Template
from typing import Any, Mapping, Sequence

import yaml

from autoact.prompts.builders import (
    DEFAULT_OBS_CHARS,
    TEMPLATE_DIR,
    THOUGHT,
    PromptError,
    ToolLike,
    one_line,
    render_history,
    render_tools,
    template,
)

__all__ = [
    "cot_messages",
    "plan_solve_plan_messages",
    "plan_solve_answer_messages",
    "reflexion_messages",
    "reflexion_question",
    "instance_context",
    "plan_lines",
    "baseline_fragment",
    "ANSWER_LABEL",
]

ANSWER_LABEL = "Answer:"


@lru_cache(maxsize=None)
def _yaml(name: str) -> Any:
    return yaml.safe_load((TEMPLATE_DIR / name).read_text(encoding="utf-8"))


def baseline_fragment(key: str, **values: Any) -> str:
    texts = _yaml("baseline_fragments.yaml")
    if key not in texts:
        raise PromptError(f"no fragment {key!r} in baseline_fragments.yaml")
    try:
        return Template(str(texts[key])).substitute({k: str(v) for k, v in values.items()})
    except KeyError as exc:
        raise PromptError(f"fragment {key!r} needs the value {exc.args[0]!r}") from None


def _fill(name: str, **values: Any) -> str:
    try:
        return template(name).substitute({k: str(v) for k, v in values.items()})
    except KeyError as exc:
        raise PromptError(f"template {name}.txt needs the value {exc.args[0]!r}") from None


def _clean(text: str) -> str:
    lines = [line.rstrip() for line in text.replace("\r", "").split("\n")]
    return "\n".join(line for line in lines if line.strip()).strip()


def _messages(system: str, user: str) -> list[dict[str, str]]:
    # The system text keeps its paragraphs; only the user text drops empty blocks.
    return [{"role": "system", "content": system.strip()}, {"role": "user", "content": _clean(user)}]


def _example(multiple_choice: bool) -> dict[str, Any]:
    return dict(_yaml("baseline_examples.yaml")["multiple_choice" if multiple_choice else "open"])


def _answer_instruction(multiple_choice: bool) -> str:
    return baseline_fragment("mc_instruction" if multiple_choice else "open_instruction")


def instance_context(instance: Mapping[str, Any] | None) -> str:
    """What the question comes with besides its text: for an image question, the
    image's caption and recognised text (as ScienceQA's text-only baselines get them)."""
    meta = dict((instance or {}).get("meta") or {})
    parts = []
    if meta.get("caption"):
        parts.append(baseline_fragment("image_context", caption=one_line(meta["caption"])))
    ocr = [one_line(t) for t in meta.get("ocr") or [] if one_line(t)]
    if ocr:
        parts.append(baseline_fragment("image_text", text="; ".join(ocr)))
    return "\n".join(parts)


def plan_lines(subgoals: Sequence[str]) -> str:
    return "\n".join(f"Subgoal {i}: {one_line(g)}" for i, g in enumerate(subgoals, 1))


def _reasoned(thought: str, answer: str) -> str:
    return f"{THOUGHT} {one_line(thought)}\n{ANSWER_LABEL} {one_line(answer)}"


# ---- chain of thought ---------------------------------------------------------------------
def cot_messages(
    task_description: str, question: str, *, context: str = "", multiple_choice: bool = False
) -> list[dict[str, str]]:
    """One call: reasoning, then ``Answer: …``."""
    if not str(question or "").strip():
        raise PromptError("cot_messages: the question is empty")
    ex = _example(multiple_choice)
    example = _clean(_fill("cot_user", question=ex["question"], context="")) + "\n" + _reasoned(ex["thought"], ex["answer"])
    system = _fill(
        "cot_system",
        task_description=one_line(task_description),
        answer_instruction=_answer_instruction(multiple_choice),
        example=example,
    )
    return _messages(system, _fill("cot_user", question=question.strip(), context=context))


# ---- plan and solve ---------------------------------------------------------------------------
def plan_solve_plan_messages(
    task_description: str, question: str, *, context: str = "", multiple_choice: bool = False
) -> list[dict[str, str]]:
    """The first call: a plan of ``Subgoal i: …`` lines, no answer yet."""
    if not str(question or "").strip():
        raise PromptError("plan_solve_plan_messages: the question is empty")
    ex = _example(multiple_choice)
    system = _fill(
        "plan_solve_plan_system",
        task_description=one_line(task_description),
        example_input=_clean(_fill("plan_solve_user", question=ex["question"], context="", plan="")),
        example_output=plan_lines(ex["plan"]),
    )
    return _messages(system, _fill("plan_solve_user", question=question.strip(), context=context, plan=""))


def plan_solve_answer_messages(
    task_description: str,
    question: str,
    plan: Sequence[str],
    *,
    context: str = "",
    multiple_choice: bool = False,
) -> list[dict[str, str]]:
    """The second call: carry out ``plan`` (its subgoal texts), then ``Answer: …``."""
    ex = _example(multiple_choice)
    system = _fill(
        "plan_solve_answer_system",
        task_description=one_line(task_description),
        answer_instruction=_answer_instruction(multiple_choice),
        example_input=_clean(_fill("plan_solve_user", question=ex["question"], context="", plan=plan_lines(ex["plan"]))),
        example_output=_reasoned(ex["thought"], ex["answer"]),
    )
    user = _fill("plan_solve_user", question=question.strip(), context=context, plan=plan_lines(plan))
    return _messages(system, user)


# ---- Reflexion -------------------------------------------------------------------------------
def reflexion_messages(
    task_description: str,
    tools: Sequence[ToolLike],
    question: str,
    history: Sequence[Mapping[str, Any]],
    answer: str | None,
    halt_reason: str | None,
    *,
    obs_chars: int = DEFAULT_OBS_CHARS,
) -> list[dict[str, str]]:
    """The self-reflection after a failed trial: what went wrong, what to do next."""
    if answer:
        outcome = baseline_fragment("wrong_answer", answer=one_line(answer))
    else:
        outcome = baseline_fragment("no_answer", reason=halt_reason or "unknown")
    system = _fill("reflexion_system", task_description=one_line(task_description), tools=render_tools(tools))
    user = _fill(
        "reflexion_user",
        question=one_line(question),
        history=render_history(history, obs_chars=obs_chars),
        outcome=outcome,
    )
    return _messages(system, user)


def reflexion_question(question: str, notes: Sequence[str]) -> str:
    """The question of the next trial: the original text plus the notes so far."""
    if not notes:
        return question
    lines = "\n".join(baseline_fragment("reflexion_note", note=one_line(n)) for n in notes)
    header = baseline_fragment("reflexion_notes_header")
    return _clean(_fill("reflexion_question", question=question.strip(), header=header, notes=lines))
