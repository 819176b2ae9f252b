"""Reading model outputs: steps, action names, arguments, reflections, one-pass plans.

Small models drift from the format (numbered labels, lower-case names, a missing
bracket, extra steps they invent after the first). The parsers take the first
well-formed reading and never raise on model text: a failure comes back as a result
with ``error`` set (``empty``, ``no_action``, ``unknown_action``), which the graphs
turn into an observation for the model.

Arguments are one line, except those of code actions (:data:`CODE_ACTIONS`): theirs
runs across lines to the bracket that closes it, keeps its indentation and may hold
brackets (``a[0]``, ``f(x)[1]``, ``"]"``).

Every pattern runs in linear time on any text: model output can hold long runs of
whitespace, and two ``\\s*`` that can take the same characters (``\\s*\\d*\\s*``)
backtrack quadratically over a run (100k spaces took from 18 s to minutes per parse).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Sequence

from autoact.actions import FINISH, canonical_action, is_code_action

# Matched at the start of stripped lines; in each, the whitespace runs are separated
# by required characters, so none can trade characters with another (see above).
_LABEL = re.compile(r"(thought|action|observation|question)(?:\s*\d+)?\s*:", re.IGNORECASE)
_CALL = re.compile(r"([A-Za-z_][\w\-]*)[^\S\n]*([\[(])")
_SUBGOAL = re.compile(r"\W*subgoal\s*\d+\s*[:.)-]", re.IGNORECASE)
_SUBGOAL_ACTION = re.compile(r"\baction(?:\s*\d+)?\s*:\s*([A-Za-z_][\w\-]*)\s*$", re.IGNORECASE)
_VERDICT = re.compile(r"reflect(?:\s*[\[(:])?\s*\"?(right|wrong|correct|incorrect)", re.IGNORECASE)
_BARE_VERDICT = re.compile(r"\W*(right|wrong|correct|incorrect)\b", re.IGNORECASE)
_ARG_PREFIX = re.compile(r"(argument|action input|input|answer|query|entity|keyword)\s*:", re.IGNORECASE)
MAX_ARGUMENT_CHARS = 500

MAX_CODE_CHARS = 4000
# Code ends at the bracket that closes it, or at a protocol line (``Observation: …``)
# that comes first (the model stopped before closing it). Brackets in strings and
# comments do not count: these tokens open them and _SKIP reads past their bodies
# (an unclosed one-line string ends with its line, so a stray quote cannot swallow
# the lines below).
_LABEL_LINE = r"\n[^\S\n]*(?:thought|action|observation|question)(?:[^\S\n]*\d+)?[^\S\n]*:"
_NEXT_LABEL = re.compile(_LABEL_LINE, re.IGNORECASE)
_CODE_TOKEN = re.compile(rf"""(?P<label>{_LABEL_LINE})|'''|\"\"\"|[\[\]()#'"]""", re.IGNORECASE)
_WRAPPERS = re.compile(r"[`*]*")
_SKIP = {
    "#": re.compile(r"[^\n]*"),
    "'": re.compile(r"(?:[^'\\\n]|\\.)*'?", re.DOTALL),
    '"': re.compile(r'(?:[^"\\\n]|\\.)*"?', re.DOTALL),
    "'''": re.compile(r"(?:[^'\\]|\\.|'(?!''))*(?:''')?", re.DOTALL),
    '"""': re.compile(r'(?:[^"\\]|\\.|"(?!""))*(?:""")?', re.DOTALL),
}


@dataclass(frozen=True)
class ParsedStep:
    thought: str = ""
    action: str = ""
    argument: str = ""
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _lines(text: str) -> list[tuple[str | None, str, int]]:
    """(label, rest, start) per non-empty line; label is thought/action/observation/question
    or None, ``start`` where ``rest`` begins in ``text`` (a code argument runs on from there)."""
    out, offset = [], 0
    for raw in (text or "").split("\n"):
        body = raw.lstrip()
        if body:
            match = _LABEL.match(body)
            rest = body[match.end():].lstrip() if match else body
            out.append((match.group(1).lower() if match else None, rest.rstrip(), offset + len(raw) - len(rest)))
        offset += len(raw) + 1
    return out


def _normal(text: str | None) -> str:
    return (text or "").replace("\r", "")


def _one_line(parts: Sequence[str]) -> str:
    return " ".join(" ".join(parts).split())


def _split_call(text: str) -> tuple[str, str | None]:
    """``Name[arg]`` / ``Name(arg)`` / ``Name arg`` -> (name, argument or None)."""
    text = text.strip().strip("`*")
    match = _CALL.match(text)
    if match:
        name, rest = match.group(1), text[match.end():]
        end = rest.rfind("]" if match.group(2) == "[" else ")")
        argument = rest[:end] if end >= 0 else rest.split("\n")[0]
        return name, argument.strip()
    parts = text.split(None, 1)
    if not parts:
        return "", None
    name = parts[0].rstrip(":.,")
    return name, (parts[1].strip() if len(parts) > 1 else None)


# Code is read by position in the whole output (no copies of what follows it), so
# that trying it line after line stays linear.
def _code_call(text: str, start: int) -> tuple[str, str] | None:
    """(name, raw code) of a ``Name[code]`` call at ``start``, the code running across
    lines to its closing bracket; None when no bracketed call starts there."""
    match = _CALL.match(text, _WRAPPERS.match(text, start).end())
    return (match.group(1), _code_span(text, match.end(), match.group(2))) if match else None


def _code_span(text: str, start: int, opener: str = "[") -> str:
    """The code from ``start`` to the bracket that closes an ``opener`` just before it.
    Unclosed (the model stopped early): up to the next protocol line, less a last
    closing bracket (as in ``print('it's')]``, whose quote hides it)."""
    closer = "]" if opener == "[" else ")"
    depth, i = 1, start
    while (match := _CODE_TOKEN.search(text, i)) is not None:
        token, i = match.group(), match.end()
        if match.group("label"):
            kept = text[start:match.start()].rstrip()
            return kept[:-1] if kept.endswith(closer) else kept
        if token == opener:
            depth += 1
        elif token == closer:
            depth -= 1
            if depth == 0:
                return text[start:match.start()]
        elif token in _SKIP:
            i = _SKIP[token].match(text, i).end()
    kept = text[start:].rstrip()
    return kept[:-1] if kept.endswith(closer) else kept


def _code_lines(text: str, start: int) -> str:
    """Bare code from ``start`` up to the next protocol line."""
    label = _NEXT_LABEL.search(text, start)
    return text[start:label.start() if label else len(text)]


def _code(text: str) -> str:
    """A code argument as the tool gets it: trailing spaces, common indentation and
    blank edges removed (the line breaks and the indentation inside stay). Not
    ``textwrap.dedent``, which compiles the margin into a pattern (1 s for 100k spaces)."""
    lines = [line.rstrip() for line in text.split("\n")]
    margin = len(os.path.commonprefix([line[:len(line) - len(line.lstrip())] for line in lines if line]))
    return "\n".join(line[margin:] for line in lines).strip()[:MAX_CODE_CHARS]


def _argument(action: str, argument: str, text: str, start: int) -> str:
    """The clean argument of ``action``; a code action's is read again from ``start``,
    where its call begins in ``text``, since it may run across lines."""
    call = _code_call(text, start) if is_code_action(action) else None
    return _code(call[1]) if call else _clean_argument(argument)


def _thought_and_action(text: str) -> tuple[str, str | None, int]:
    """The thought (text before the first action line), that action line's text and
    where that text starts in ``text`` (-1 without an action line)."""
    thought: list[str] = []
    for label, rest, start in _lines(text):
        if label == "action":
            return _one_line(thought), rest, start
        if label in ("observation", "question"):
            break
        thought.append(rest)
    return _one_line(thought), None, -1


def parse_react(text: str, valid: Sequence[str]) -> ParsedStep:
    """A ReAct step: ``Thought: …`` then ``Action: Name[argument]``."""
    text = _normal(text)
    if not text.strip():
        return ParsedStep(error="empty")
    thought, action_text, start = _thought_and_action(text)
    if action_text is None:
        # No "Action:" label: accept a bare call of a valid action on its own line.
        before: list[str] = []
        for label, rest, start in _lines(text):
            if label is None and "[" in rest:
                name, argument = _split_call(rest)
                action = canonical_action(name, valid)
                if argument is not None and action:
                    return ParsedStep(_one_line(before), action, _argument(action, argument, text, start))
            before.append(rest)
        return ParsedStep(thought=thought, error="no_action")
    name, argument = _split_call(action_text)
    if not name:
        return ParsedStep(thought=thought, error="no_action")
    action = canonical_action(name, valid)
    if action is None:
        return ParsedStep(thought, name, _clean_argument(argument or ""), error="unknown_action")
    return ParsedStep(thought, action, _argument(action, argument or "", text, start))


def parse_plan(text: str, valid: Sequence[str]) -> ParsedStep:
    """A plan step: ``Thought: …`` then ``Action: Name`` (an argument, if the model
    writes one anyway, is dropped: the tool agent writes it)."""
    text = _normal(text)
    if not text.strip():
        return ParsedStep(error="empty")
    thought, action_text, _ = _thought_and_action(text)
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
    may add (``Argument:``, ``Action: Name[...]``, ``Name[...]``). May be empty.
    For a code action: the code from there on, across lines."""
    text, code = _normal(text), is_code_action(action)
    for label, rest, start in _lines(text):
        if label in ("observation", "question"):
            break
        if label == "thought":
            continue
        if label == "action":
            call = _code_call(text, start) if code else None
            if call:
                if cleaned := _code(call[1]):
                    return cleaned
                continue
            _, argument = _split_call(rest)
            if argument:
                return _code(argument) if code else _clean_argument(argument)
            continue  # "Action: Name" alone carries no argument
        prefix = _ARG_PREFIX.match(rest)
        line = rest[prefix.end():].lstrip() if prefix else rest
        if code:
            cleaned = _code(_code_argument(text, start + len(rest) - len(line), action))
            if cleaned:
                return cleaned
            continue
        name, argument = _split_call(line)
        if argument is not None and name.lower() == action.lower() and re.match(r"[\w\-]+\s*[\[(]", line):
            line = argument
        elif line.startswith("[") and line.endswith("]"):
            line = line[1:-1]
        cleaned = _clean_argument(line)
        if cleaned:
            return cleaned
    return ""


def _code_argument(text: str, start: int, action: str) -> str:
    """Code the tool agent wrote from ``start`` on: ``Name[code]``, ``[code]`` or bare
    lines up to the next protocol line."""
    call = _code_call(text, start)
    if call and call[0].lower() == action.lower():
        return call[1]
    if text.startswith("[", start):
        return _code_span(text, start + 1)
    return _code_lines(text, start)


def parse_bracketed_argument(text: str, action: str = "") -> str:
    """The tool agent's transcript answer: the text after the prompt's ``Name[`` up
    to the closing bracket (generation stops there) on the first line. May be empty.
    For a code ``action``: up to the bracket that closes the prompt's, across lines."""
    text = _normal(text)
    if is_code_action(action):
        return _code(_code_span(text, 0))
    text = text[1:] if text.startswith("[") else text
    return _clean_argument(text.split("\n", 1)[0].partition("]")[0])


def parse_reflection(text: str) -> tuple[str, str | None]:
    """(thought, verdict) of ``Thought: …`` ``Action: Reflect[right|wrong]``; verdict None
    when none can be read. ``correct``/``incorrect`` count as right/wrong."""
    text = _normal(text)
    thought, action_text, _ = _thought_and_action(text)
    match = _VERDICT.search(action_text or "") or _VERDICT.search(text)
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
    for raw in _normal(text).split("\n"):
        line = raw.strip()
        if not line:
            continue
        head = _SUBGOAL.match(line)
        if head:
            rest = line[head.end():]
            action = _SUBGOAL_ACTION.search(rest)  # "… Action: Name" ending the line
            current = _one_line([rest[:action.start()] if action else rest])
            if action:
                _add_subgoal(plan, current, action.group(1), valid)
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
    "parse_argument",
    "parse_bracketed_argument",
    "parse_plan",
    "parse_react",
    "parse_reflection",
    "parse_subgoals",
]
