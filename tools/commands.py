"""``autoact tools …``: list the tool library, run actions against a task's corpus,
and build a task's search index ahead of time."""

from __future__ import annotations

import argparse
import json
import time

from autoact.tools.index import SEARCH_MODES

__all__ = ["register"]


def _settings(args: argparse.Namespace):
    from autoact.settings import settings_from_args

    return settings_from_args(args)


def _load(args: argparse.Namespace):
    from autoact.tools.tasks import load_task

    data = args.data if args.data else None
    if data is not None and len(data) == 1:
        data = data[0]
    return load_task(args.task, data=data, corpus=args.corpus)


def cmd_list(args: argparse.Namespace) -> int:
    from autoact.tools.library import tool_library

    task = _load(args)
    tools = tool_library(task)
    rows = [
        {"name": name, "usage": tool.metadata["usage"], "default": name in task.default_tools,
         "description": tool.description}
        for name, tool in tools.items()
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"task {task.name}: {len(task.instances)} questions, corpus of {len(task.corpus)} paragraphs")
    for row in rows:
        mark = "*" if row["default"] else " "
        print(f"{mark} {row['usage']}\n    {row['description']}")
    print("  Finish[answer]\n    Ends the episode with the final answer.")
    print("  Reflect[right|wrong]\n    After Finish: the agent's verdict on its own answer.")
    print("(* = the task's default tools)")
    return 0


def cmd_try(args: argparse.Namespace) -> int:
    from autoact.tools.env import TaskEnv
    from autoact.tools.library import tool_names
    from autoact.tools.tasks import TaskInstance

    settings = _settings(args)
    task = _load(args)
    env = TaskEnv(task, list(args.tools or tool_names()), home=settings.home, search_mode=args.mode, top_k=args.top_k)
    if args.question_id:
        instance = task.get(args.question_id)
    elif args.question:
        instance = TaskInstance(id="cli", question=args.question, answer=None)
    elif task.instances:
        instance = task.instances[0]
    else:
        instance = TaskInstance(id="cli", question="(no question)", answer=None)
    question = env.reset(instance)
    print(f"Question ({instance.id}): {question}")
    for action in args.actions:
        start = time.perf_counter()
        result = env.step(action)
        elapsed = (time.perf_counter() - start) * 1000
        print(f"\nAction: {action}\nObservation: {result.observation}")
        extra = f"reward={result.reward}" if result.done else ""
        print(f"[{elapsed:.1f} ms{'; ' + extra if extra else ''}{'; done' if result.done else ''}]")
    return 0


def cmd_index(args: argparse.Namespace) -> int:
    from autoact.tools.index import get_index

    settings = _settings(args)
    task = _load(args)
    if not len(task.corpus):
        print(f"task {task.name} has no corpus to index")
        return 1
    index = get_index(task.corpus, settings.home)
    modes = ("bm25", "dense") if args.dense else ("bm25",)
    stats = index.build(modes)
    print(f"index of {len(task.corpus)} paragraphs at {index.dir}")
    for key, value in stats.items():
        print(f"  {key}: {value:.2f}")
    return 0


def _add_task_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", default="demo", help="demo, hotpotqa, scienceqa or custom (default demo)")
    parser.add_argument("--data", action="append", metavar="PATH",
                        help="question file(s) or folder (repeatable; default: the task's own)")
    parser.add_argument("--corpus", metavar="PATH", help="corpus JSONL ({title, sentences|text}) or hf:DATASET[:CONFIG][:SPLIT]")


def register(subparsers, add_common) -> None:
    tools = subparsers.add_parser("tools", help="the tool library and task environments")
    sub = tools.add_subparsers(dest="tools_command", required=True)

    lst = sub.add_parser("list", help="tool names, usage and descriptions")
    add_common(lst)
    _add_task_args(lst)
    lst.add_argument("--json", action="store_true", help="print JSON")
    lst.set_defaults(func=cmd_list)

    tr = sub.add_parser("try", help='run actions such as "Retrieve[Velmora]" "Lookup[harbour]" in one episode')
    add_common(tr)
    _add_task_args(tr)
    tr.add_argument("actions", nargs="+", metavar="ACTION", help="Name[argument], run in order")
    tr.add_argument("--question-id", help="the task question to load (Image2Text reads its image)")
    tr.add_argument("--question", help="a free question instead of one of the task's")
    tr.add_argument("--tools", nargs="+", metavar="NAME", help="tools to enable (default: all)")
    tr.add_argument("--mode", choices=SEARCH_MODES, default="bm25", help="Search ranking (default bm25)")
    tr.add_argument("--top-k", type=int, default=3, help="passages Search returns (default 3)")
    tr.set_defaults(func=cmd_try)

    ix = sub.add_parser("index", help="build (or load) the task's search index now")
    add_common(ix)
    _add_task_args(ix)
    ix.add_argument("--dense", action="store_true", help="also build the dense (MiniLM + faiss) index")
    ix.set_defaults(func=cmd_index)
