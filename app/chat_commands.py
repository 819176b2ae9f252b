"""``autoact serve-chat``: the LangServe chat app (group, ReAct and CodeAct graphs) on uvicorn.

The model endpoint is ``--base-url``, else the configured or recorded one (``autoact
serve``); when none answers, a model server for the run (its adapters included) is
started for as long as the app runs, as ``autoact ask`` does.

``--api-key`` (or ``AUTOACT_API_KEY``) makes the app require ``Authorization: Bearer
<key>`` and is also the key sent to the model server. A ``--host`` other than a
loopback address is served with a loud warning: without a key, anyone who reaches
the port runs the agents.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Callable

from autoact.app.ask_commands import add_context_options, context_values

DEFAULT_PORT = 8000


def cmd_serve_chat(args: argparse.Namespace) -> int:
    import uvicorn

    from autoact.settings import settings_from_args
    from autoact.serving.endpoint import model_endpoint, use_api_key, warn_if_exposed
    from autoact.app.chat_app import create_app

    settings = settings_from_args(args)
    graphs = tuple(g.strip() for g in args.graphs.split(",") if g.strip())
    context = context_values(args)
    api_key = use_api_key(args.api_key)
    with model_endpoint(settings, args.base_url, serve=not args.no_serve) as url:
        app = create_app(
            settings, base_url=url, context=context, graphs=graphs, preload=True, api_key=api_key or "",
            max_body_bytes=args.max_body_bytes, max_question_chars=args.max_question_chars,
        )
        print(f"model endpoint: {url}", file=sys.stderr)
        print(f"chat playground: http://{args.host}:{args.port}/{graphs[0]}/playground/", file=sys.stderr)
        if api_key:
            print("requests need the header Authorization: Bearer <key> (the playground page cannot send it)",
                  file=sys.stderr)
        warn_if_exposed("the chat server", args.host, args.port, api_key)
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning" if not args.verbose else "info")
    return 0


def register(subparsers: Any, add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    chat = subparsers.add_parser(
        "serve-chat",
        help="the chat app (LangServe: /group, /react and /codeact with /invoke, /batch, /stream, playground)",
    )
    add_common(chat)
    chat.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only; "
                      "any other address is reachable from other machines: use --api-key)")
    chat.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    chat.add_argument("--graphs", default="group,react,codeact",
                      help="graphs to mount, comma-separated: group, react, codeact (the default three), cot, "
                      "plan_solve, reflexion")
    add_context_options(chat)
    chat.add_argument("--api-key", help="require Authorization: Bearer KEY on every request (401 otherwise); also "
                      "sent to the model server. Default $AUTOACT_API_KEY, which is better: a command line is "
                      "visible to every user of the machine")
    # the defaults are chat_app's (not imported here: registering the command stays cheap)
    chat.add_argument("--max-body-bytes", type=int, help="largest request body in bytes; larger ones get 413 "
                      "(default 1048576: 1 MiB)")
    chat.add_argument("--max-question-chars", type=int, help="longest question (the last message) in characters; "
                      "longer ones get 422 (default 8000)")
    chat.set_defaults(func=cmd_serve_chat)
