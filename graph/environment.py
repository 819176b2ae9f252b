"""The graphs' access to tasks, tools and environments (``autoact.tools``).

The graphs keep only a JSON snapshot of the environment in their state
(``TaskEnv.get_state()``) and restore an environment from it in each node, so a run
can pause in a checkpoint and resume in another process. The environments (and their
tool libraries) are pooled: made once per concurrent episode, restored per step. Loading a task (its data,
corpus and index) is the slow part: it is done once per process and cached.

A :class:`Backend` bundles the entry points of the tools contract; tests pass
one built on a small fake task.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from autoact.actions import FINISH, Action
from autoact.prompts.builders import default_examples, tool_spec
from autoact.tools import TaskEnv, TaskInstance, load_task, tool_library
from autoact.tools.sandbox import SandboxUnavailable, ensure_python_tool
from autoact.tools.worked_examples import task_examples

from .context import BaseContext


class TaskSetupError(RuntimeError):
    """A task or tool setting the graphs cannot use (named clearly for the user)."""


@dataclass
class Backend:
    """The tools contract the graphs use: ``load_task(name, data, corpus)``,
    ``tool_library(task)``, ``task_env(task, tool_names)`` (an environment with
    ``reset``, ``act(Action)``, ``get_state``/``set_state``), ``task_instance(**fields)``
    and ``task_examples(task, tool_names)``; the real ones from ``autoact.tools`` unless
    replaced (tests pass fakes)."""

    load_task: Callable[..., Any] = load_task
    tool_library: Callable[[Any], dict[str, Any]] = tool_library
    task_env: Callable[[Any, list[str]], Any] = TaskEnv
    task_instance: Callable[..., Any] = TaskInstance
    task_examples: Callable[[Any, list[str]], list[dict]] = task_examples
    _tasks: dict[tuple, Any] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # ---- tasks and tools --------------------------------------------------------------
    def task(self, context: BaseContext) -> Any:
        """The context's task, loaded once per process (thread-safe)."""
        key = self._task_key(context)
        with self._lock:
            if key not in self._tasks:
                self._tasks[key] = self.load_task(context.task, data=context.data, corpus=context.corpus)
            return self._tasks[key]

    @staticmethod
    def _task_key(context: BaseContext) -> tuple:
        """The task cache's key: several data files (a list in the context) as a tuple."""
        data = tuple(context.data) if isinstance(context.data, list) else context.data
        return (context.task, data, context.corpus)

    def tools(self, task: Any, context: BaseContext) -> list[dict[str, str]]:
        """``{name, description, usage}`` of the selected tools, validated against the
        library; made once per task and tool selection (every node asks)."""
        key = self._tools_key(task, context)
        with self._lock:
            if key in self._tasks:
                return list(self._tasks[key][1])
        specs = self._tool_specs(task, context)
        with self._lock:
            self._tasks[key] = (task, specs)  # the task is kept alive: its id is in the key
        return list(specs)

    @staticmethod
    def _tools_key(task: Any, context: BaseContext) -> tuple:
        return ("tools", id(task), tuple(context.tools) if context.tools else None)

    def _tool_specs(self, task: Any, context: BaseContext) -> list[dict[str, str]]:
        library = self.tool_library(task)
        names = list(context.tools) if context.tools else list(getattr(task, "default_tools", None) or library)
        unknown = [n for n in names if n not in library]
        if unknown:
            raise TaskSetupError(
                f"tool(s) {unknown} are not in the library of task {context.task!r}; it has {sorted(library)}"
            )
        if FINISH in names:
            raise TaskSetupError("Finish is built in; do not list it among the tools")
        if "Python" in names:
            try:
                ensure_python_tool()
            except SandboxUnavailable as exc:
                raise TaskSetupError(f"the Python tool is offered but {exc}") from exc
        return [tool_spec(library[n]) for n in names]

    def loaded(self, context: BaseContext) -> tuple[Any, list[dict[str, str]]] | None:
        """(task, tool specs) when both are cached already, else None: a node then needs
        no thread to get them. Read without the lock, which is held while a task loads
        (an event loop must not wait for that); a dict read is atomic."""
        task = self._tasks.get(self._task_key(context))
        entry = None if task is None else self._tasks.get(self._tools_key(task, context))
        return None if entry is None else (task, list(entry[1]))

    def examples(self, task: Any, tool_names: list[str], source: str = "task") -> list[dict]:
        """Worked examples for transcript prompts, made once per task and tool set:
        from the task's seeds where it has usable ones (``source="task"``), else the
        generic ones."""
        if source == "generic":
            return default_examples(tool_names)
        key = ("examples", id(task), tuple(tool_names))
        with self._lock:
            if key not in self._tasks:
                self._tasks[key] = self.task_examples(task, tool_names)
            return self._tasks[key]

    def cached_examples(self, task: Any, tool_names: list[str], source: str = "task") -> list[dict] | None:
        """The task's worked examples when :meth:`examples` made them already, else None
        (read without the lock, as :meth:`loaded`); the generic ones need no making."""
        if source == "generic":
            return self.examples(task, tool_names, source)
        return self._tasks.get(("examples", id(task), tuple(tool_names)))

    # ---- instances and environments ---------------------------------------------------------
    def instance(self, data: dict[str, Any] | None, question: str) -> Any:
        """The TaskInstance of a run: the one given in state, else one made from the question."""
        if data:
            factory = self.task_instance
            try:
                if hasattr(factory, "from_dict"):  # the real TaskInstance reads extra keys leniently
                    return factory.from_dict(data)
                return factory(**data)
            except (TypeError, ValueError) as exc:
                raise TaskSetupError(f"the state's instance is not a valid TaskInstance: {exc}") from exc
        digest = hashlib.sha1(question.encode("utf-8")).hexdigest()[:12]
        return self.task_instance(id=f"chat-{digest}", question=question, answer=None)

    @contextlib.contextmanager
    def _env(self, task: Any, tool_names: list[str]) -> Iterator[Any]:
        """An environment with these tools, taken from the pool (or made) and put back:
        its tool library is built once per concurrent episode, not at every step. Whoever
        takes one sets its state first (``reset`` or ``set_state`` replace it whole)."""
        key = ("envs", id(task), tuple(tool_names))
        with self._lock:
            pool = self._tasks.setdefault(key, [])
            env = pool.pop() if pool else None
        if env is None:
            env = self.task_env(task, tool_names)
        try:
            yield env
        finally:
            with self._lock:
                pool.append(env)

    def reset(self, task: Any, tool_names: list[str], instance: Any) -> tuple[str, dict[str, Any]]:
        """Start an episode: (the question as the environment presents it, env snapshot)."""
        with self._env(task, tool_names) as env:
            question = env.reset(instance)
            return str(question), env.get_state()

    def step(
        self, task: Any, tool_names: list[str], env_state: dict[str, Any] | None, action: Action
    ) -> tuple[Any, dict[str, Any]]:
        """Run one action (a tool call, ``Finish`` or ``Reflect``) on an environment restored
        from the episode's snapshot: (its ``StepResult``, the new snapshot). The
        environment is the episode's one authority: it scores Finish and records Reflect."""
        if env_state is None:
            raise TaskSetupError("no environment snapshot in the state: the episode was not started")
        with self._env(task, tool_names) as env:
            env.set_state(env_state)
            result = env.act(action)
            return result, env.get_state()

    def score(self, task: Any, instance: Any, answer: str) -> dict[str, float] | None:
        """The environment's score of ``answer`` for an episode without tools (the
        no-tool baselines): ``reward`` plus f1/em or acc, None without a gold answer."""
        with self._env(task, []) as env:
            env.reset(instance)
            return env.act(Action(FINISH, answer)).info.get("score")


_default: Backend | None = None
_default_lock = threading.Lock()


def default_backend() -> Backend:
    """The process-wide backend on ``autoact.tools`` (its task cache is shared)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Backend()
        return _default


def instance_dict(instance: Any) -> dict[str, Any]:
    """A TaskInstance as a JSON-friendly dict (dataclass, pydantic model or mapping)."""
    if isinstance(instance, dict):
        return dict(instance)
    if dataclasses.is_dataclass(instance):
        return dataclasses.asdict(instance)
    if hasattr(instance, "model_dump"):
        return instance.model_dump()
    return dict(vars(instance))
