"""Builders of the meta-agent's data-making prompts: self-instruct and tool selection.

The templates are the ``self_instruct_*`` and ``tool_selection_*`` files beside this
module; the plan/tool/reflect prompts live in :mod:`autoact.prompts.builders`.
"""

from __future__ import annotations

from typing import Any, Sequence

import yaml

from autoact.prompts.builders import TEMPLATE_DIR, template


def qa_block(question: str, answer: str) -> str:
    return f"Question: {question.strip()}\nAnswer: {answer.strip()}"


def self_instruct_messages(
    task_description: str, examples: Sequence[tuple[str, str]], k: int
) -> list[dict[str, str]]:
    shown = "\n\n".join(qa_block(q, a) for q, a in examples)
    return [
        {"role": "system", "content": template("self_instruct_system").substitute(task_description=task_description.strip())},
        {"role": "user", "content": template("self_instruct_user").substitute(examples=shown, k=k)},
    ]


def grounded_messages(
    task_description: str,
    paragraphs: Sequence[tuple[str, str]],
    demonstrations: Sequence[tuple[str, str, str, str]],
    request: str = "",
) -> list[dict[str, str]]:
    """Ask for a question answerable from ``paragraphs`` ((title, text) pairs).

    ``demonstrations`` are (source paragraphs, question, answer, request) and are shown
    as earlier chat turns: a small model follows worked turns far better than a rule.
    ``request`` says what kind of question this turn wants (each demonstration shows
    its own, so the model sees requests being followed).
    """
    def paragraph_turn(text: str, asked: str) -> dict[str, str]:
        content = template("self_instruct_grounded_user").substitute(paragraphs=text)
        return {"role": "user", "content": f"{content.rstrip()}\n{asked}" if asked else content}

    messages = [{
        "role": "system",
        "content": template("self_instruct_grounded_system").substitute(task_description=task_description.strip()),
    }]
    for text, question, answer, asked in demonstrations:
        messages += [paragraph_turn(text, asked), {"role": "assistant", "content": qa_block(question, answer)}]
    messages.append(paragraph_turn(" ".join(f"[{title}] {text}" for title, text in paragraphs), request))
    return messages


def grounded_demonstrations() -> list[dict[str, str]]:
    """Generic worked turns for grounded self-instruct (``self_instruct_grounded_example.yaml``)."""
    data = yaml.safe_load((TEMPLATE_DIR / "self_instruct_grounded_example.yaml").read_text(encoding="utf-8"))
    return list(data["demonstrations"])


def _tool_lines(tools: Sequence[Any]) -> str:
    lines = []
    for tool in tools:
        if isinstance(tool, dict):
            name, description, usage = tool["name"], tool["description"], tool.get("usage", "")
        else:
            name, description, usage = tool.name, tool.description, (tool.metadata or {}).get("usage", "")
        lines.append(f"- {name}: {description.strip()} Usage: {usage}".rstrip())
    return "\n".join(lines)


def _tool_selection_user(task_description: str, tools: Sequence[Any], examples: Sequence[str]) -> dict[str, str]:
    return {
        "role": "user",
        "content": template("tool_selection_user").substitute(
            task_description=task_description.strip(),
            examples="\n".join(f"- {q}" for q in examples),
            tools=_tool_lines(tools),
        ),
    }


def tool_selection_messages(
    task_description: str, tools: Sequence[Any], examples: Sequence[str]
) -> list[dict[str, str]]:
    """``tools``: LangChain tools (name, description, metadata["usage"]) or mappings.

    A worked turn for another task (``tool_selection_example.yaml``) comes first.
    """
    demo = yaml.safe_load((TEMPLATE_DIR / "tool_selection_example.yaml").read_text(encoding="utf-8"))
    return [
        {"role": "system", "content": template("tool_selection_system").template.strip()},
        _tool_selection_user(demo["task_description"], demo["tools"], demo["examples"]),
        {"role": "assistant", "content": demo["answer"]},
        _tool_selection_user(task_description, tools, examples),
    ]
