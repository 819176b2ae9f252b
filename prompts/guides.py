"""Regular expressions that constrain what an agent writes (vLLM structured outputs).

Each guide matches the text the model writes *after* its opening (see
:data:`autoact.prompts.transcript.OPENINGS`; in chat the same text follows the
prefilled ``Thought:``): one thought line, then the action line. So a step always
names a valid action, a reflection always ends in ``Reflect[right]`` or
``Reflect[wrong]``, and a multiple-choice answer is always one of the options —
the 135M model answered ScienceQA grades 9-12 with text that named no option at
all. The thought and free-text arguments stay free (one line each).
"""

from __future__ import annotations

import re
from typing import Sequence

from autoact.prompts.builders import FINISH, REFLECT, VERDICTS

#: One line of free text (a thought, a search query, an open answer).
_LINE = r"[^\n]{0,400}"
_ARGUMENT = r"[^\]\n]{1,200}"


def _alternatives(options: Sequence[str]) -> str:
    return "(?:" + "|".join(re.escape(o) for o in options) + ")"


def _finish_argument(choices: Sequence[str] | None) -> str:
    return _alternatives(choices) if choices else _ARGUMENT


def react_step(tool_names: Sequence[str], choices: Sequence[str] | None = None) -> str:
    """`` thought\\nAction: Tool[argument]`` or `` thought\\nAction: Finish[answer]``."""
    calls = [f"{re.escape(name)}\\[{_ARGUMENT}\\]" for name in tool_names]
    calls.append(f"{FINISH}\\[{_finish_argument(choices)}\\]")
    return f"{_LINE}\\nAction: (?:{'|'.join(calls)})"


def plan_step(tool_names: Sequence[str]) -> str:
    """`` thought\\nAction: Name`` (the tool agent writes the argument)."""
    return f"{_LINE}\\nAction: {_alternatives([*tool_names, FINISH])}"


def tool_argument(action: str, choices: Sequence[str] | None = None) -> str:
    """``argument]`` after the prompt's ``Action: Name[``; for Finish on a
    multiple-choice question, one of the options."""
    argument = _finish_argument(choices) if action == FINISH else _ARGUMENT
    return f"{argument}\\]"


def reflection() -> str:
    """`` thought\\nAction: Reflect[right]`` or ``…[wrong]``."""
    return f"{_LINE}\\nAction: {REFLECT}\\[{_alternatives(VERDICTS)}\\]"


__all__ = ["plan_step", "react_step", "reflection", "tool_argument"]
