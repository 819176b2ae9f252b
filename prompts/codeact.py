"""The CodeAct agent's prompt: a transcript whose actions are Python code blocks.

The agent writes a thought and one fenced block, which the graph runs in the
episode's sandbox session; the observation is what the block printed, its last
line's value and any traceback::

    Question: ...
    Thought: I need the city of the Eiffel Tower first.
    ```python
    print(retrieve("Eiffel Tower"))
    ```
    Observation: The Eiffel Tower is a ... tower ... in Paris, France.
    Thought: ...

The prompt is a header (the task, the functions a block may call), worked examples
for the base model (generic ones, from ``codeact.yaml``), then the episode, ending
with ``Thought:``. It shares the ReAct agent's opening and stop sequences (the
``react`` kind of :mod:`autoact.prompts.transcript`), so the model stops before it
writes an observation itself.

This module also reads the format back (:func:`parse_code_turn`): writing and
reading one format stay side by side.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from string import Template
from typing import Any, Iterable, Mapping, Sequence

from autoact.prompts.builders import (
    DEFAULT_OBS_CHARS,
    OBSERVATION,
    QUESTION,
    THOUGHT,
    PromptError,
    _fill,
    _yaml,
    one_line,
)
from autoact.prompts.transcript import OPENINGS

#: The action name of a code turn in the trajectory (its argument is the code).
CODE = "Code"
#: The model call's kind: CodeAct opens and stops like the ReAct agent.
KIND = "react"
FENCE = "```"
_LANGUAGE_TAGS = ("", "python", "py", "python3")

Example = Mapping[str, Any]


# ---- the functions a block may call ----------------------------------------------------
@dataclass(frozen=True)
class Function:
    tool: str  # the tool (text action) that answers it: Retrieve, Lookup, ...
    name: str  # the Python name: retrieve, lookup, ...
    usage: str
    description: str


def _texts() -> dict:
    return _yaml("codeact.yaml")


def functions(tool_names: Iterable[str]) -> list[Function]:
    """The functions for the offered tools, in their order (tools without one, such
    as Calculator and Python, are left out: the code computes by itself)."""
    specs = _texts()["functions"]
    return [Function(tool, **specs[tool]) for tool in tool_names if tool in specs]


def fragment(key: str, **values: Any) -> str:
    """A short text from ``codeact.yaml``'s fragments, with ``${…}`` filled in."""
    texts = _texts()["fragments"]
    if key not in texts:
        raise PromptError(f"no fragment {key!r} in codeact.yaml")
    return Template(str(texts[key])).substitute({k: str(v) for k, v in values.items()})


def function_names(tool_names: Iterable[str]) -> str:
    """``retrieve, lookup`` — how an observation names the functions."""
    return ", ".join(f.name for f in functions(tool_names))


def render_functions(tool_names: Iterable[str]) -> str:
    line = Template(_texts()["function_line"])
    lines = [line.substitute(usage=f.usage, description=f.description) for f in functions(tool_names)]
    return "\n".join([*lines, _texts()["finish_line"]])


# ---- worked examples ----------------------------------------------------------------------
def default_examples(tool_names: Iterable[str]) -> list[dict]:
    """The best fitting multi-hop example, then the best fitting one-hop one (an
    example fits when all its tools are offered; more tools used is better)."""
    offered = set(tool_names)
    fitting = [e for e in _texts()["examples"] if set(e.get("tools") or []) <= offered]
    chosen = []
    for shape in ("multi-hop", "one-hop"):
        candidates = [e for e in fitting if e["shape"] == shape]
        if candidates:
            chosen.append(max(candidates, key=lambda e: len(e.get("tools") or [])))
    return chosen


def code_episode(episode: Example, tool_names: Iterable[str]) -> dict | None:
    """A text-action worked episode (``steps`` of ``Retrieve[...]`` …, as
    :mod:`autoact.tools.worked_examples` builds from the task's seeds) as a CodeAct
    example: each tool step becomes its function's call, printed, with the same
    observation; ``Finish`` becomes ``finish(answer)``. None when a step has no
    function (Calculator, Python) among the offered tools."""
    by_tool = {f.tool: f.name for f in functions(tool_names)}
    turns = []
    for step in episode.get("steps") or []:
        argument = json.dumps(one_line(step.get("argument", "")), ensure_ascii=False)
        if step.get("action") == "Finish":
            turns.append({"thought": step.get("thought", ""), "code": f"finish({argument})"})
            break
        name = by_tool.get(step.get("action"))
        if name is None:
            return None
        call = f"{name}()" if name == "image2text" else f"{name}({argument})"
        turns.append({"thought": step.get("thought", ""), "code": f"print({call})",
                      "observation": step.get("observation", "")})
    if not turns or not turns[-1]["code"].startswith("finish("):
        return None
    return {"name": episode.get("name", ""), "shape": episode.get("shape", "one-hop"),
            "question": episode["question"], "turns": turns}


def task_examples(episodes: Sequence[Example], tool_names: Sequence[str]) -> list[dict]:
    """The worked examples in the task's own shape: its seed episodes (named
    ``seed:<id>``) as code, a multi-hop one then a one-hop one; where a shape has no
    seed episode, the generic code example of that shape stands in. A small model
    copies its examples closely, so examples in the task's shape matter (see
    ``autoact.tools.worked_examples``)."""
    generic = {e["shape"]: e for e in default_examples(tool_names)}
    seeded: dict[str, dict] = {}
    for episode in episodes:
        if str(episode.get("name", "")).startswith("seed:"):
            converted = code_episode(episode, tool_names)
            if converted is not None:
                seeded.setdefault(converted["shape"], converted)
    return [seeded.get(shape) or generic[shape] for shape in ("multi-hop", "one-hop")
            if shape in seeded or shape in generic]


# ---- rendering ------------------------------------------------------------------------------
def trim(text: str, limit: int) -> str:
    """``text`` cut to about ``limit`` characters, keeping its head and its tail:
    the end of a traceback names the error."""
    text = str(text or "").strip()
    if limit <= 0 or len(text) <= limit:
        return text
    head, tail = (limit * 2) // 3, limit // 3
    return text[:head].rstrip() + fragment("cut", count=len(text) - head - tail) + text[len(text) - tail:].lstrip()


def code_block(code: str) -> str:
    return f"{FENCE}python\n{code.strip(chr(10))}\n{FENCE}"


def render_turns(turns: Sequence[Mapping[str, Any]], *, obs_chars: int = DEFAULT_OBS_CHARS) -> str:
    """The episode's turns as transcript lines. A turn is a mapping with ``thought``,
    ``code`` (empty for a turn without a code block) and ``observation`` (none after
    the turn that called finish)."""
    lines: list[str] = []
    for turn in turns:
        lines.append(f"{THOUGHT} {one_line(turn.get('thought', ''))}")
        if turn.get("code"):
            lines.append(code_block(turn["code"]))
        if turn.get("observation") is not None:
            lines.append(f"{OBSERVATION} {trim(turn['observation'], obs_chars)}")
    return "\n".join(lines)


def codeact_prompt(
    task_description: str,
    tool_names: Sequence[str],
    question: str,
    history: Sequence[Mapping[str, Any]] = (),
    *,
    examples: Sequence[Example] = (),
    obs_chars: int = DEFAULT_OBS_CHARS,
) -> str:
    """The agent's next turn: header, examples, the question and the turns so far,
    ending with ``Thought:``."""
    header = _fill("transcript_codeact", task_description=one_line(task_description),
                   functions=render_functions(tool_names)).strip()
    shown = [f"{QUESTION} {one_line(e['question'])}\n{render_turns(e['turns'])}" for e in examples]
    episode = f"{QUESTION} {one_line(question)}"
    if history:
        episode += "\n" + render_turns(history, obs_chars=obs_chars)
    return "\n\n".join([header, *shown, episode]) + "\n" + OPENINGS[KIND]


def code_completion(turn: Mapping[str, Any]) -> str:
    """What the model writes after the prompt's ``Thought:`` for ``turn``."""
    return f" {one_line(turn['thought'])}\n{code_block(turn['code'])}"


def turns_of(steps: Sequence[Mapping[str, Any]]) -> list[dict]:
    """A trajectory's code turns as the prompt renders them (the Finish step that
    closes an episode is not shown: nothing follows it)."""
    return [{"thought": s["thought"], "code": s["argument"], "observation": s["observation"]}
            for s in steps if s["action"] == CODE]


#: The served name (and data file, ``RUN/data/codeact.jsonl``) of the fine-tuned CodeAct agent.
AGENT = "codeact"


def training_records(
    trajectory: Sequence[Mapping[str, Any]],
    task_description: str,
    tool_names: Sequence[str],
    question: str,
    *,
    record_id: str = "trajectory",
    obs_chars: int = DEFAULT_OBS_CHARS,
) -> list[dict]:
    """Cut a finished CodeAct trajectory into completion records for the ``codeact``
    agent, one per turn with a code block: ``prompt`` is exactly what the graph sends
    a fine-tuned agent at that turn (no worked examples), ``completion`` the whole
    turn (thought and block). Turns that raised an error are kept: reading the
    traceback and fixing the code in the next turn is what CodeAct learns. Turns
    without a code block stay in the history of later records but are no target."""
    turns = turns_of(trajectory)
    records = []
    for index, turn in enumerate(turns):
        if not turn["code"]:
            continue
        prompt = codeact_prompt(task_description, tool_names, question, turns[:index], obs_chars=obs_chars)
        records.append({"id": f"{record_id}/{AGENT}/{index}", "agent": AGENT, "format": "transcript",
                        "prompt": prompt, "completion": code_completion(turn)})
    return records


# ---- reading the model's turn --------------------------------------------------------------
@dataclass(frozen=True)
class CodeTurn:
    thought: str
    code: str  # empty: no code block

    @property
    def ok(self) -> bool:
        return bool(self.code.strip())


def parse_code_turn(text: str) -> CodeTurn:
    """The thought and the first fenced code block of the model's turn (never
    raises). A block the model did not close (it stopped first) runs to the end.
    Plain string scans, no regular expressions: linear on any text."""
    text = str(text or "")
    start = text.find(FENCE)
    thought = _strip_label(text if start < 0 else text[:start])
    if start < 0:
        return CodeTurn(thought, "")
    header_end = text.find("\n", start)
    if header_end < 0:  # a fence and nothing after it
        return CodeTurn(thought, "")
    tag = text[start + len(FENCE):header_end].strip().lower()
    if tag not in _LANGUAGE_TAGS:  # ```some code on the fence line
        return CodeTurn(thought, "")
    end = text.find(FENCE, header_end + 1)
    code = text[header_end + 1:] if end < 0 else text[header_end + 1:end]
    return CodeTurn(thought, code.strip("\n").rstrip())


def _strip_label(text: str) -> str:
    thought = one_line(text)
    while thought.lower().startswith(THOUGHT.lower()):
        thought = thought[len(THOUGHT):].strip()
    return thought


__all__ = [
    "AGENT", "CODE", "KIND", "CodeTurn", "Function", "code_block", "code_completion", "code_episode", "codeact_prompt",
    "default_examples", "fragment", "function_names", "functions", "parse_code_turn", "render_functions",
    "render_turns", "task_examples", "training_records", "trim", "turns_of",
]
