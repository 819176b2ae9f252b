"""``autoact ask`` (one answer, with its trajectory) and ``autoact chat`` (a terminal chat).

Both compile the chosen graph (``--graph``: group planning, ReAct, CodeAct or one of
the evaluation's baselines) with the SQLite checkpointer in the run directory
(``RUN/graph/checkpoints.sqlite``), so ``--thread ID`` resumes a conversation. The
model server is the configured or recorded endpoint; when none answers, a server for
the run (its adapters included) is started for the duration of the command.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any, AsyncIterator, Callable

from langchain_core.messages import HumanMessage

from autoact.graph.registry import graph_kind, graph_names
from autoact.serving.endpoint import model_endpoint
from autoact.settings import Settings

#: Options for what only some graphs have: context field -> (option, the graphs, what they set);
#: None: every registered graph that acts with tools. Given for another graph, they are
#: refused rather than silently ignored.
GRAPH_OPTIONS = {
    "mode": ("--mode", ("group",), "planning mode"),
    "reflect": ("--no-reflect", ("group", "react"), "Reflect step"),
    "max_reflections": ("--max-reflections", ("group", "react"), "Reflect step"),
    "tools": ("--tools", None, "tools"),
    "max_steps": ("--max-steps", None, "tool steps"),
}


# ---- options -> settings, context -------------------------------------------------------
def add_graph_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--graph", choices=graph_names(), default="group",
                        help="; ".join(f"{name}: {graph_kind(name).description}" for name in graph_names())
                        + " (default: group)")
    add_context_options(parser, task_default="demo")
    parser.add_argument("--thread", help="conversation thread id to resume (default: a new one)")


def add_context_options(parser: argparse.ArgumentParser, task_default: str | None = None) -> None:
    """The options that set graph-context fields and the model endpoint: ``ask``,
    ``chat`` and ``serve-chat`` share them (read back by :func:`context_values`)."""
    parser.add_argument("--task", default=task_default, help="task name: demo, hotpotqa, scienceqa, custom (default demo)")
    parser.add_argument("--data", help="task data file, for tasks that read one")
    parser.add_argument("--corpus", help="corpus file for Retrieve / Lookup / Search")
    parser.add_argument("--tools", help="comma-separated tool names (default: the task's)")
    parser.add_argument("--mode", choices=("iterative", "one_pass"), help="group planning mode (default iterative)")
    parser.add_argument("--no-reflect", action="store_true", help="end at Finish, without Reflect (group, react)")
    parser.add_argument("--max-steps", type=int, help="most tool and Finish steps (default 8)")
    parser.add_argument("--max-reflections", type=int, help="retries after Reflect[wrong] (default 1; group, react)")
    parser.add_argument("--temperature", type=float, help="sampling temperature (default: the settings')")
    parser.add_argument("--max-tokens", type=int, help="tokens per model call (default: the settings')")
    parser.add_argument("--base-url", help="model server endpoint (…/v1) to use")
    parser.add_argument("--no-serve", action="store_true", help="fail instead of starting a model server")


def context_values(args: argparse.Namespace) -> dict[str, Any]:
    """The graph-context fields that :func:`add_context_options` options set (only those given)."""
    values: dict[str, Any] = {
        "task": args.task,
        "data": args.data,
        "corpus": args.corpus,
        "tools": [t.strip() for t in args.tools.split(",") if t.strip()] if args.tools else None,
        "max_steps": args.max_steps,
        "max_reflections": args.max_reflections,
        "mode": args.mode,
        "temperature": args.temperature,
        "max_tokens": args.max_tokens,
    }
    if args.no_reflect:
        values["reflect"] = False
    return {k: v for k, v in values.items() if v is not None}


def context_from_args(args: argparse.Namespace, base_url: str | None, chat: bool = False) -> dict[str, Any]:
    """The graph context for the options given (only those set; the rest default).
    ``chat``: for the terminal chat, where a CodeAct reply in plain words is the answer
    (``ask`` keeps the evaluation's rule, so its trajectory shows what an evaluation does)."""
    context = context_values(args)
    if base_url is not None:
        context["base_url"] = base_url
    for field, (option, graphs, what) in GRAPH_OPTIONS.items():
        graphs = graph_names(uses_tools=True) if graphs is None else graphs
        if field in context and args.graph not in graphs:
            raise SystemExit(f"{option}: --graph {args.graph} has no {what} (the option applies to --graph "
                             f"{', '.join(graphs)})")
    if chat and args.graph == "codeact":
        context["plain_answer_ends"] = True
    return graph_kind(args.graph).context(**context).model_dump(exclude_unset=True)  # validates now, clearly


def checkpoint_path(settings: Settings) -> Path:
    return Path(settings.run_dir) / "graph" / "checkpoints.sqlite"


@contextlib.asynccontextmanager
async def compiled_graph(name: str, settings: Settings) -> AsyncIterator[Any]:
    """The graph compiled with the run's SQLite checkpointer (async: the nodes are)."""
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    path = checkpoint_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    build = graph_kind(name).build
    async with AsyncSqliteSaver.from_conn_string(str(path)) as saver:
        yield build(settings=settings, checkpointer=saver, name=name)


# ---- one turn ----------------------------------------------------------------------------
async def run_turn(
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
    async for update in graph.astream(payload, config, context=context, stream_mode="updates"):
        for node in update:
            if progress:
                progress(node)
    return dict((await graph.aget_state(config)).values)


def format_trajectory(state: dict[str, Any]) -> str:
    """The episode as readable lines: steps (a code turn's block, a plan and a
    multi-line observation indented, a sandbox verdict other than ok beside its
    observation), reflections, outcome, usage."""
    from autoact.graph.baselines import PLAN_ACTION
    from autoact.prompts.builders import FINISH
    from autoact.prompts.codeact import CODE

    lines: list[str] = []
    reflections = list(state.get("reflections") or [])
    for i, step in enumerate(state.get("trajectory") or [], 1):
        action = step["action"]
        if action == PLAN_ACTION:
            body = _labelled("Plan", step["thought"])
        else:
            body = [f"    Thought: {step['thought']}"] if step["thought"] or action != FINISH else []
            if action == CODE:
                body += _labelled("Code", step["argument"] or "(no code block)")
            else:
                body.append(f"    Action: {action}[{step['argument']}]")
        if action == FINISH:
            if reflections:
                r = reflections.pop(0)
                body.append(f"    Reflection: {r['thought']}")
                body.append(f"    Action: Reflect[{r['verdict']}]")
        elif action != PLAN_ACTION:
            status = step.get("status")
            body += _labelled("Observation" if status in (None, "ok") else f"Observation ({status})",
                              step["observation"])
        lines.append(f"{i:>2}. {body[0].lstrip()}")
        lines.extend(body[1:])
    lines.append(f"halted: {state.get('halt_reason')}")
    if state.get("score"):
        lines.append("score: " + ", ".join(f"{k}={v:.3g}" for k, v in state["score"].items()))
    for role, u in sorted((state.get("usage") or {}).items()):
        lines.append(
            f"usage {role}: {u['calls']} calls, {u['prompt_tokens']} prompt + {u['completion_tokens']} completion tokens"
        )
    return "\n".join(lines)


def _labelled(label: str, text: str) -> list[str]:
    """``label: text`` on one line, or the label and then the text's lines indented
    (code, a traceback, a plan)."""
    if "\n" not in text:
        return [f"    {label}: {text}"]
    return [f"    {label}:", *(f"      {line}" for line in text.splitlines())]


def _json_state(state: dict[str, Any]) -> str:
    out = {k: v for k, v in state.items() if k not in ("messages", "env_state", "pending", "subgoals")}
    out["messages"] = [{"type": m.type, "content": m.content} for m in state.get("messages", [])]
    return json.dumps(out, indent=2, ensure_ascii=False, default=str)


def _stderr_progress(node: str) -> None:
    print(f"  · {node}", file=sys.stderr, flush=True)


# ---- commands -------------------------------------------------------------------------------------
def cmd_ask(args: argparse.Namespace) -> int:
    from autoact.settings import settings_from_args

    if not args.question.strip():
        raise SystemExit("the question is empty")
    settings = settings_from_args(args)
    thread = args.thread or uuid.uuid4().hex[:12]
    context_from_args(args, None)  # a wrong option fails now, not after a model server started
    with model_endpoint(settings, args.base_url, serve=not args.no_serve) as url:
        context = context_from_args(args, url)

        async def ask() -> dict[str, Any]:
            async with compiled_graph(args.graph, settings) as graph:
                return await run_turn(graph, args.question, thread, context, None if args.json else _stderr_progress)

        start = time.perf_counter()
        state = asyncio.run(ask())
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
    from autoact.settings import settings_from_args

    settings = settings_from_args(args)
    thread = args.thread or uuid.uuid4().hex[:12]
    context_from_args(args, None, chat=True)  # a wrong option fails now, not after a model server started
    with model_endpoint(settings, args.base_url, serve=not args.no_serve) as url:
        context = context_from_args(args, url, chat=True)
        thread = asyncio.run(chat_session(args.graph, settings, thread, context, input_fn))
    print(f"thread: {thread}  (continue with --thread {thread})")
    return 0


async def chat_session(name: str, settings: Settings, thread: str, context: dict[str, Any],
                       input_fn: Callable[[str], str]) -> str:
    """The chat loop on one event loop (the checkpointer's connection lives on it); the
    terminal is read in a thread. Returns the thread the chat ended on."""
    async with compiled_graph(name, settings) as graph:
        print(f"autoact chat: {name} graph, task {context.get('task', 'demo')}, thread {thread}")
        print(CHAT_HELP)
        last: dict[str, Any] = {}
        while True:
            try:
                line = (await asyncio.to_thread(input_fn, "you> ")).strip()
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
            last = await run_turn(graph, line, thread, context, _stderr_progress)
            print(f"autoact> {last['messages'][-1].content}")
    return thread


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
