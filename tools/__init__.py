"""Tools and task environments for the offline world.

The local corpus and its indexes (``corpus``, ``index``), the LangChain tools
(``library``), action parsing (``actions``), safe arithmetic (``calculator``),
sandboxed Python (``sandbox``), task loaders (``tasks``) and the environment
(``env``). The built-in demo task's files live in ``demo/``.
"""

from autoact.actions import Action, ActionError, parse_action
from autoact.tools.corpus import Corpus, Paragraph
from autoact.tools.env import StepResult, TaskEnv
from autoact.tools.index import CorpusIndex, get_index
from autoact.tools.library import TOOLS, EpisodeContext, ToolSpec, register_tool, tool_library, tool_names
from autoact.tools.sandbox import PythonSandbox, SandboxLimits, run_python
from autoact.tools.tasks import TASK_NAMES, Task, TaskInstance, load_task

__all__ = [
    "Action",
    "ActionError",
    "Corpus",
    "CorpusIndex",
    "EpisodeContext",
    "Paragraph",
    "PythonSandbox",
    "SandboxLimits",
    "StepResult",
    "TASK_NAMES",
    "TOOLS",
    "Task",
    "TaskEnv",
    "TaskInstance",
    "ToolSpec",
    "get_index",
    "load_task",
    "parse_action",
    "register_tool",
    "run_python",
    "tool_library",
    "tool_names",
]
