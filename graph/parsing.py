"""Reading model outputs: steps, action names, arguments, reflections, one-pass plans.

Small models drift from the format (numbered labels, lower-case names, a missing
bracket, extra steps they invent after the first). The parsers take the first
well-formed reading and never raise on model text: a failure comes back as a result
with ``error`` set (``empty``, ``no_action``, ``unknown_action``), which the graphs
turn into an observation for the model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from autoact.prompts.builders import FINISH

_LABEL = re.compile(r"^\s*(thought|action|observation|question)\s*\d*\s*:\s*", re.IGNORECASE)
_CALL = re.compile(r"^\s*([A-Za-z_][\w\-]*)\s*[\[(](.*)$", re.DOTALL)
_SUBGOAL = re.compile(
    r"subgoal\s*\d+\s*[:.)-]\s*(?P<text>.*?)\s*(?:\baction\s*\d*\s*:\s*(?P<action>[A-Za-z_][\w\-]*))?\s*$",
    re.IGNORECASE,
)
_VERDICT = re.compile(r"reflect\s*[\[(:]?\s*\"?(right|wrong|correct|incorrect)", re.IGNORECASE)
_BARE_VERDICT = re.compile(r"^\W*(right|wrong|correct|incorrect)\b", re.IGNORECASE)
_ARG_PREFIX = re.compile(r"^\s*(argument|action input|input|answer|query|entity|keyword)\s*:\s*", re.IGNORECASE)
MAX_ARGUMENT_CHARS = 500


@dataclass(frozen=True)
class ParsedStep:
    thought: str = ""
    action: str = ""
    argument: str = ""
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _lines(text: str) -> list[tuple[str | None, str]]:
    """(label, rest) per non-empty line; label is thought/action/observation/question or None."""
    out = []
    for raw in (text or "").replace("\r", "").split("\n"):
        if not raw.strip():
            continue
        match = _LABEL.match(raw)
        out.append((match.group(1).lower(), raw[match.end():].strip()) if match else (None, raw.strip()))
    return out


def canonical_action(name: str, valid: Sequence[str]) -> str | None:
    """``name`` as spelled in ``valid`` (case and punctuation forgiven), else None."""
    key = re.sub(r"[^a-z0-9]", "", (name or "").lower())
    for candidate in valid:
        if re.sub(r"[^a-z0-9]", "", candidate.lower()) == key:
            return candidate
    return None


def _split_call(text: str) -> tuple[str, str | None]:
    """``Name[arg]`` / ``Name(arg)`` / ``Name arg`` -> (name, argument or None)."""
    text = text.strip().strip("`*")
    match = _CALL.match(text)
    if match:
        name, rest = match.group(1), match.group(2)
        close = "]" if text[match.end(1):].lstrip().startswith("[") else ")"
        end = rest.rfind(close)
        argument = rest[:end] if end >= 0 else rest.split("\n")[0]
        return name, argument.strip()
    parts = text.split(None, 1)
    if not parts:
        return "", None
    name = parts[0].rstrip(":.,")
    return name, (parts[1].strip() if len(parts) > 1 else None)


def _thought_and_action(text: str) -> tuple[str, str | None]:
    """The thought (text before the first action line) and that action line's text."""
    thought: list[str] = []
    for label, rest in _lines(text):
        if label == "action":
            return " ".join(thought).strip(), rest
        if label in ("observation", "question"):
            break
        thought.append(rest)
    return " ".join(thought).strip(), None


def parse_react(text: str, valid: Sequence[str]) -> ParsedStep:
    """A ReAct step: ``Thought: …`` then ``Action: Name[argument]``."""
    if not (text or "").strip():
        return ParsedStep(error="empty")
    thought, action_text = _thought_and_action(text)
    if action_text is None:
        # No "Action:" label: accept a bare call of a valid action on its own line.
        before: list[str] = []
        for label, rest in _lines(text):
            name, argument = _split_call(rest)
            if label is None and argument is not None and canonical_action(name, valid) and "[" in rest:
                return ParsedStep(" ".join(before), canonical_action(name, valid), _clean_argument(argument))
            before.append(rest)
        return ParsedStep(thought=thought, error="no_action")
    name, argument = _split_call(action_text)
    if not name:
        return ParsedStep(thought=thought, error="no_action")
    action = canonical_action(name, valid)
    if action is None:
        return ParsedStep(thought, name, _clean_argument(argument or ""), error="unknown_action")
    return ParsedStep(thought, action, _clean_argument(argument or ""))


def parse_plan(text: str, valid: Sequence[str]) -> ParsedStep:
    """A plan step: ``Thought: …`` then ``Action: Name`` (an argument, if the model
    writes one anyway, is dropped: the tool agent writes it)."""
    if not (text or "").strip():
        return ParsedStep(error="empty")
    thought, action_text = _thought_and_action(text)
    if action_text is None:
        return ParsedStep(thought=thought, error="no_action")
    name, _ = _split_call(action_text)
    if not name:
        return ParsedStep(thought=thought, error="no_action")
    action = canonical_action(name, valid)
    if action is None:
        return ParsedStep(thought, name, error="unknown_action")
    return ParsedStep(thought, action)


def _clean_argument(text: str) -> str:
    text = " ".join(text.split())
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'`":
        text = text[1:-1].strip()
    return text[:MAX_ARGUMENT_CHARS]


def parse_argument(text: str, action: str) -> str:
    """The tool agent's output: the first non-empty line, without a label the model
    may add (``Argument:``, ``Action: Name[...]``, ``Name[...]``). May be empty."""
    for label, rest in _lines(text):
        if label in ("observation", "question"):
            break
        if label == "thought":
            continue
        if label == "action":
            _, argument = _split_call(rest)
            if argument:
                return _clean_argument(argument)
            continue  # "Action: Name" alone carries no argument
        line = _ARG_PREFIX.sub("", rest)
        name, argument = _split_call(line)
        if argument is not None and name.lower() == action.lower() and re.match(r"^\s*[\w\-]+\s*[\[(]", line):
            line = argument
        elif line.startswith("[") and line.endswith("]"):
            line = line[1:-1]
        cleaned = _clean_argument(line)
        if cleaned:
            return cleaned
    return ""


def parse_bracketed_argument(text: str) -> str:
    """The tool agent's transcript answer: the text after the prompt's ``Name[`` up
    to the closing bracket (generation stops there) on the first line. May be empty."""
    text = (text or "")[1:] if (text or "").startswith("[") else (text or "")
    return _clean_argument(text.split("\n", 1)[0].partition("]")[0])


def parse_reflection(text: str) -> tuple[str, str | None]:
    """(thought, verdict) of ``Thought: …`` ``Action: Reflect[right|wrong]``; verdict None
    when none can be read. ``correct``/``incorrect`` count as right/wrong."""
    thought, action_text = _thought_and_action(text)
    match = _VERDICT.search(action_text or "") or _VERDICT.search(text or "")
    if match is None and action_text:
        match = _BARE_VERDICT.match(action_text)
    if match is None:
        return thought, None
    return thought, "right" if match.group(1).lower() in ("right", "correct") else "wrong"


def parse_subgoals(text: str, valid: Sequence[str]) -> list[tuple[str, str]]:
    """One-pass plan lines ``Subgoal i: text Action: Name`` -> [(text, action)].

    An ``Action:`` on the line after a subgoal belongs to it; subgoals whose action
    is missing or unknown are dropped; nothing after the first Finish is kept.
    """
    plan: list[tuple[str, str]] = []
    current: str | None = None
    for raw in (text or "").replace("\r", "").split("\n"):
        line = raw.strip()
        if not line:
            continue
        match = _SUBGOAL.search(line)
        if match and re.match(r"^\W*subgoal", line, re.IGNORECASE):
            current = match.group("text").strip()
            if match.group("action"):
                _add_subgoal(plan, current, match.group("action"), valid)
                current = None
            continue
        label_match = _LABEL.match(line)
        if current is not None and label_match and label_match.group(1).lower() == "action":
            name, _ = _split_call(line[label_match.end():])
            _add_subgoal(plan, current, name, valid)
            current = None
        if plan and plan[-1][1] == FINISH:
            break
    return plan


def _add_subgoal(plan: list[tuple[str, str]], text: str, name: str, valid: Sequence[str]) -> None:
    action = canonical_action(name, valid)
    if action and (not plan or plan[-1][1] != FINISH):
        plan.append((text.rstrip(" .;,") + "." if text else "", action))


__all__ = [
    "ParsedStep",
    "canonical_action",
    "parse_argument",
    "parse_bracketed_argument",
    "parse_plan",
    "parse_react",
    "parse_reflection",
    "parse_subgoals",
]
