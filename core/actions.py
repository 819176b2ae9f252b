"""The action protocol: what an action is, how it is written and read back.

Every part of the project that names, writes or reads an action uses this module:
the prompt builders write ``Name[argument]`` with :func:`format_action`, the graphs
match a model's action name with :func:`canonical_action`, and the task environment
reads the action with :func:`parse_action`. So the names of the environment's own
actions (:data:`FINISH`, :data:`REFLECT`), the verdicts and the one rule for
matching a name exist once.

Parsing ``Name[argument]`` is forgiving where the intent is clear.

Accepted: surrounding whitespace, an ``Action:`` / ``Action 3:`` prefix (also
after a ``Thought:`` line), back-ticks around the whole action, any letter case
of a known name, a space before ``[``, balanced brackets inside the argument, and
for a code action (:data:`CODE_ACTIONS`) any brackets (its argument runs to the
last ``]``). A name matches a valid one whatever its case and punctuation
(``LOOK-UP`` is ``Lookup``), the same rule the graphs apply. Rejected
with an :class:`ActionError` that says what was wrong: no action, missing
brackets, an empty argument, an unknown or unavailable action name, and text
after the closing bracket.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "Action",
    "ActionError",
    "CODE_ACTIONS",
    "ENV_ACTIONS",
    "FINISH",
    "REFLECT",
    "VERDICTS",
    "canonical_action",
    "format_action",
    "is_code_action",
    "parse_action",
]

FINISH = "Finish"
REFLECT = "Reflect"
#: What ``Reflect[…]`` may say about the answer just given.
VERDICTS = ("right", "wrong")
#: Actions handled by the environment itself rather than by a tool, with their usage.
ENV_ACTIONS = {FINISH: f"{FINISH}[answer]", REFLECT: f"{REFLECT}[{'|'.join(VERDICTS)}]"}
#: Actions whose argument is code: it may span lines and hold any brackets.
CODE_ACTIONS = ("Python",)

# [ \t]* rather than \s* after ^: with \s* every line start of a run of blank lines
# rescans the rest of the run (20k newlines took 3.9 s)
_PREFIX = re.compile(r"(?im)^[ \t]*action(?:[ \t]*\d+)?[ \t]*:\s*")
_NAME_BRACKET = re.compile(r"^([A-Za-z][A-Za-z0-9_\-]*)\s*\[(.*)\]$", re.S)
_NAME_ONLY = re.compile(r"^([A-Za-z][A-Za-z0-9_\-]*)\s*\[", re.S)
_TRAILING_PUNCT = re.compile(r"\]\s*[.;,!]+\s*$")


@dataclass(frozen=True)
class Action:
    name: str
    argument: str

    def __str__(self) -> str:
        return format_action(self.name, self.argument)


class ActionError(ValueError):
    """A malformed action; ``kind`` names the problem for logs and tests."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message


def format_action(name: str, argument: str) -> str:
    """The written form of an action, as prompts show it and :func:`parse_action` reads it."""
    return f"{name}[{argument}]"


def canonical_action(name: str, valid: Iterable[str]) -> str | None:
    """``name`` as spelled in ``valid`` (case and punctuation forgiven), else None."""
    key = _name_key(name)
    return next((candidate for candidate in valid if _name_key(candidate) == key), None)


def is_code_action(name: str) -> bool:
    return canonical_action(name, CODE_ACTIONS) is not None


def _name_key(name: str | None) -> str:
    return re.sub(r"[^a-z0-9]", "", (name or "").lower())


def _strip_wrappers(text: str) -> str:
    text = text.strip()
    m = _PREFIX.search(text)
    if m:
        text = text[m.end():].strip()
    if len(text) >= 2 and text[0] == text[-1] == "`" and not text.startswith("```"):
        text = text.strip("`").strip()
    return text


def parse_action(text: str, valid: Iterable[str] | None = None) -> Action:
    """Parse ``Name[argument]``; ``valid`` (names) restricts and canonicalises names.

    Raises :class:`ActionError` with kind ``empty``, ``no-brackets``, ``no-name``,
    ``unclosed-bracket``, ``trailing-text``, ``empty-argument`` or ``unknown-action``.
    """
    if text is None or not str(text).strip():
        raise ActionError("empty", "No action given. Write an action as Name[argument]")
    text = _strip_wrappers(str(text))
    if not text:
        raise ActionError("empty", "No action given. Write an action as Name[argument]")
    text = _TRAILING_PUNCT.sub("]", text)  # "Finish[yes]." -> "Finish[yes]"
    m = _NAME_BRACKET.match(text)
    if not m:
        if "[" not in text:
            raise ActionError(
                "no-brackets", f"The action {_short(text)!r} is missing brackets; write it as Name[argument]"
            )
        if not _NAME_ONLY.match(text) or text.startswith("["):
            raise ActionError("no-name", f"The action {_short(text)!r} does not start with an action name")
        if "]" not in text[text.index("[") :]:
            raise ActionError("unclosed-bracket", f"The action {_short(text)!r} has no closing ']'")
        raise ActionError(
            "trailing-text", f"Text follows the closing ']' in {_short(text)!r}; write one action as Name[argument]"
        )
    name, argument = m.group(1), m.group(2).strip()
    close = _matching_bracket(text, text.index("["))
    # Code may hold unbalanced brackets inside strings: its argument runs to the last "]".
    if close is not None and close < len(text) - 1 and not is_code_action(name):
        # "Retrieve[A] then Lookup[b]": two actions, or text after the first one.
        raise ActionError(
            "trailing-text", f"Text follows the closing ']' in {_short(text)!r}; write one action as Name[argument]"
        )
    if valid is not None:
        canonical = canonical_action(name, valid)
        if canonical is None:
            raise ActionError("unknown-action", f"Unknown action {name!r}")
        name = canonical
    if not argument:
        raise ActionError("empty-argument", f"The action {name}[] has an empty argument")
    return Action(name, argument)


def _matching_bracket(text: str, start: int) -> int | None:
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "[":
            depth += 1
        elif text[i] == "]":
            depth -= 1
            if depth == 0:
                return i
    return None


def _short(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
