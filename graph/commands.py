"""``autoact ask`` (one answer, with its trajectory) and ``autoact chat`` (a terminal chat).

Both compile the chosen graph with the SQLite checkpointer in the run directory
(``RUN/graph/checkpoints.sqlite``), so ``--thread ID`` resumes a conversation. The
model server is the configured or recorded endpoint; when none answers, a server for
the run (its adapters included) is started for the duration of the command.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

from langchain_core.messages import HumanMessage

from autoact.serving.endpoint import model_endpoint
from autoact.settings import Settings

GRAPHS = ("group", "react")


# ---- options -> settings, context -------------------------------------------------------
def add_graph_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--graph", choices=GRAPHS, default="group", help="group planning (default) or single-agent ReAct")
    parser.add_argument("--task", default="demo", help="task name: demo, hotpotqa, scienceqa, custom (default demo)")
    parser.add_argument("--data", help="task data file, for tasks that read one")
    parser.add_argument("--corpus", help="corpus file for Retrieve / Lookup / Search")
    parser.add_argument("--tools", help="comma-separated tool names (default: the task's)")
    parser.add_argument("--mode", choices=("iterative", "one_pass"), help="group planning mode (default iterative)")
    parser.add_argument("--no-reflect", action="store_true", help="end at Finish, without Reflect")
    parser.add_argument("--max-steps", type=int, help="most tool and Finish steps (default 8)")
    parser.add_argument("--max-reflections", type=int, help="retries after Reflect[wrong] (default 1)")
    parser.add_argument("--temperature", type=float, help="sampling temperature (default: the settings')")
    parser.add_argument("--max-tokens", type=int, help="tokens per model call (default: the settings')")
    parser.add_argument("--base-url", help="model server endpoint (…/v1) to use")
    parser.add_argument("--no-serve", action="store_true", help="fail instead of starting a model server")
    parser.add_argument("--thread", help="conversation thread id to resume (default: a new one)")


def context_from_args(args: argparse.Namespace, base_url: str | None) -> dict[str, Any]:
    """The graph context for the options given (only those set; the rest default)."""
    from autoact.graph.context import GroupContext, ReactContext

    values: dict[str, Any] = {
        "base_url": base_url,
        "task": args.task,
        "data": args.data,
        "corpus": args.corpus,
        "tools": [t.strip() for t in args.tools.split(",") if t.strip()] if args.tools else None,
        "max_steps": args.max_steps,
        "max_reflections": args.max_reflections,
        "temperature": args.temperature,
        "max_tokens": args.max_tokens,
    }
    if args.no_reflect:
        values["reflect"] = False
    if args.mode:
        if args.graph != "group":
            raise SystemExit("--mode applies to --graph group only")
        values["mode"] = args.mode
    context = {k: v for k, v in values.items() if v is not None}
    schema = GroupContext if args.graph == "group" else ReactContext
    return schema(**context).model_dump(exclude_unset=True)  # validates now, with a clear message


def checkpoint_path(settings: Settings) -> Path:
    return Path(settings.run_dir) / "graph" / "checkpoints.sqlite"


@contextlib.contextmanager
def compiled_graph(name: str, settings: Settings) -> Iterator[Any]:
    """The graph compiled with the run's SQLite checkpointer."""
    from langgraph.checkpoint.sqlite import SqliteSaver

    from autoact.graph.group import build_group_graph
    from autoact.graph.react import build_react_graph

    path = checkpoint_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    build = build_group_graph if name == "group" else build_react_graph
    with SqliteSaver.from_conn_string(str(path)) as saver:
        yield build(settings=settings, checkpointer=saver, name=name)


# ---- one turn ----------------------------------------------------------------------------
def run_turn(
    graph: Any,
    question: str,
    thread: str,
    context: dict[str, Any],
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Send one human message on ``thread``; returns the thread's state after the turn.
    ``progress`` is told each node as it finishes."""
    config = {"configurable": {"thread_id": thread}}
    payload = {"messages": [HumanMessage(content=question)]}
    for update in graph.stream(payload, config, context=context, stream_mode="updates"):
        for node in update:
            if progress:
                progress(node)
    return dict(graph.get_state(config).values)


def format_trajectory(state: dict[str, Any]) -> str:
    """The episode as readable lines: steps, reflections, outcome, usage."""
    lines: list[str] = []
    reflections = list(state.get("reflections") or [])
    for i, step in enumerate(state.get("trajectory") or [], 1):
        lines.append(f"{i:>2}. Thought: {step['thought']}")
        lines.append(f"    Action: {step['action']}[{step['argument']}]")
        if step["action"] == "Finish":
            if reflections:
                r = reflections.pop(0)
                lines.append(f"    Reflection: {r['thought']}")
                lines.append(f"    Action: Reflect[{r['verdict']}]")
        else:
            lines.append(f"    Observation: {step['observation']}")
    lines.append(f"halted: {state.get('halt_reason')}")
    if state.get("score"):
        lines.append("score: " + ", ".join(f"{k}={v:.3g}" for k, v in state["score"].items()))
    for role, u in sorted((state.get("usage") or {}).items()):
        lines.append(
            f"usage {role}: {u['calls']} calls, {u['prompt_tokens']} prompt + {u['completion_tokens']} completion tokens"
        )
    return "\n".join(lines)


def _json_state(state: dict[str, Any]) -> str:
    out = {k: v for k, v in state.items() if k not in ("messages", "env_state", "pending", "subgoals")}
    out["messages"] = [{"type": m.type, "content": m.content} for m in state.get("messages", [])]
    return json.dumps(out, indent=2, ensure_ascii=False, default=str)


def _stderr_progress(node: str) -> None:
    print(f"  · {node}", file=sys.stderr, flush=True)


# ---- commands -------------------------------------------------------------------------------------
def cmd_ask(args: argparse.Namespace) -> int:
    from autoact.cli import settings_from_args

    if not args.question.strip():
        raise SystemExit("the question is empty")
    settings = settings_from_args(args)
    thread = args.thread or uuid.uuid4().hex[:12]
    with model_endpoint(settings, args.base_url, serve=not args.no_serve) as url:
        context = context_from_args(args, url)
        with compiled_graph(args.graph, settings) as graph:
            start = time.perf_counter()
            state = run_turn(graph, args.question, thread, context, None if args.json else _stderr_progress)
            elapsed = time.perf_counter() - start
    if args.json:
        print(_json_state(state))
        return 0
    answer = state["messages"][-1].content if state.get("messages") else ""
    print(f"Question: {state.get('question', args.question)}")
    print(f"Answer: {answer}")
    print(f"Trajectory ({args.graph} graph, {elapsed:.1f} s):")
    print(format_trajectory(state))
    print(f"thread: {thread}  (continue with --thread {thread}; checkpoints: {checkpoint_path(settings)})")
    return 0


CHAT_HELP = "commands: /trajectory (last episode), /new (new thread), /quit"


def cmd_chat(args: argparse.Namespace, input_fn: Callable[[str], str] = input) -> int:
    from autoact.cli import settings_from_args

    settings = settings_from_args(args)
    thread = args.thread or uuid.uuid4().hex[:12]
    with model_endpoint(settings, args.base_url, serve=not args.no_serve) as url:
        context = context_from_args(args, url)
        with compiled_graph(args.graph, settings) as graph:
            print(f"autoact chat: {args.graph} graph, task {context.get('task', 'demo')}, thread {thread}")
            print(CHAT_HELP)
            last: dict[str, Any] = {}
            while True:
                try:
                    line = input_fn("you> ").strip()
                except EOFError:
                    print()
                    break
                if not line:
                    continue
                if line in ("/quit", "/exit"):
                    break
                if line == "/new":
                    thread = uuid.uuid4().hex[:12]
                    print(f"new thread {thread}")
                    continue
                if line == "/trajectory":
                    print(format_trajectory(last) if last else "no episode yet")
                    continue
                if line.startswith("/"):
                    print(CHAT_HELP)
                    continue
                last = run_turn(graph, line, thread, context, _stderr_progress)
                print(f"autoact> {last['messages'][-1].content}")
    print(f"thread: {thread}  (continue with --thread {thread})")
    return 0


def register(subparsers: Any, add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    ask = subparsers.add_parser("ask", help="answer one question with a graph; prints the answer and the trajectory")
    add_common(ask)
    add_graph_options(ask)
    ask.add_argument("question", help="the question")
    ask.add_argument("--json", action="store_true", help="print the final state as JSON")
    ask.set_defaults(func=cmd_ask)

    chat = subparsers.add_parser("chat", help="interactive chat in the terminal; --thread resumes a conversation")
    add_common(chat)
    add_graph_options(chat)
    chat.set_defaults(func=cmd_chat)
