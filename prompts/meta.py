"""Builders of the meta-agent's data-making prompts: self-instruct and tool selection.

The templates are the ``self_instruct_*`` and ``tool_selection_*`` files beside this
module; the plan/tool/reflect prompts live in :mod:`autoact.prompts.builders`.
"""

from __future__ import annotations

from typing import Any, Sequence

from autoact.prompts.builders import template


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
    demonstrations: Sequence[tuple[str, str, str]],
) -> list[dict[str, str]]:
    """Ask for a question answerable from ``paragraphs`` ((title, text) pairs).

    ``demonstrations`` are (source paragraph text, question, answer) triples: a small
    model follows a worked paragraph -> question example far better than a rule.
    """
    shown = "\n\n".join(f"Paragraph: {text}\n{qa_block(q, a)}" for text, q, a in demonstrations)
    shown_paragraphs = " ".join(f"[{title}] {text}" for title, text in paragraphs)
    return [
        {"role": "system", "content": template("self_instruct_system").substitute(task_description=task_description.strip())},
        {"role": "user", "content": template("self_instruct_grounded_user").substitute(paragraphs=shown_paragraphs, demonstrations=shown)},
    ]


def tool_selection_messages(
    task_description: str, tools: Sequence[Any], examples: Sequence[str]
) -> list[dict[str, str]]:
    """``tools``: LangChain tools (name, description, metadata["usage"]) or mappings."""
    lines = []
    for tool in tools:
        if isinstance(tool, dict):
            name, description, usage = tool["name"], tool["description"], tool.get("usage", "")
        else:
            name, description, usage = tool.name, tool.description, (tool.metadata or {}).get("usage", "")
        lines.append(f"- {name}: {description.strip()} Usage: {usage}".rstrip())
    return [
        {"role": "system", "content": template("tool_selection_system").template.strip()},
        {
            "role": "user",
            "content": template("tool_selection_user").substitute(
                task_description=task_description.strip(),
                examples="\n".join(f"- {q}" for q in examples),
                tools="\n".join(lines),
            ),
        },
    ]
