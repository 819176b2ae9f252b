"""An instant OpenAI-compatible model server, for measuring the agent loop's own cost.

    python benchmarks/stub_server.py PORT [--no-metrics]

It serves ``base`` and the ``plan``/``tool``/``reflect`` adapters on 127.0.0.1 and
answers at once, without a model: each agent by the stop sequences its call sends
(tool: "]", plan: "[", reflect: "\\nThought:"; anything else gets a ReAct step), a
``Retrieve`` first and ``Finish`` once the episode holds an observation. ``/metrics``
has vLLM-style prefix-cache counters (the tokens of a prompt's longest common prefix
with an earlier prompt count as hits), so the benchmarks' parsing runs too, and
``POST /reset_prefix_cache`` forgets the prompts seen, as vLLM's development endpoint does.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

MODELS = ("base", "plan", "tool", "reflect")


class PrefixCounter:
    """Prefix-cache tokens (4 characters a token) over the last 200 prompts."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.queries = self.hits = 0
        self.seen: list[str] = []

    def add(self, prompt: str) -> None:
        with self.lock:
            best = max((_common_prefix(prompt, p) for p in self.seen), default=0)
            self.seen = [*self.seen[-199:], prompt]
            self.queries += len(prompt) // 4
            self.hits += best // 4


def _common_prefix(a: str, b: str) -> int:
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:  # binary search on slices: compared in C
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if a[:mid] == b[:mid] else (lo, mid - 1)
    return lo


def answer(prompt: str, stop: list[str]) -> str:
    observed = "Observation:" in prompt.rsplit("Question:", 1)[-1]
    if "]" in stop:  # the tool agent writes the argument after "Action: X["
        return "1798" if prompt.endswith("Finish[") else "Morning Gull"
    if "[" in stop:  # the plan agent: a thought and an action name
        return " The paragraph answers it.\nAction: Finish" if observed else " I need the paragraph.\nAction: Retrieve"
    if "\nThought:" in stop:
        return " The answer fits the question.\nAction: Reflect[right]"
    return (" The paragraph answers it.\nAction: Finish[1798]" if observed
            else " I need the paragraph.\nAction: Retrieve[Morning Gull]")


def handler(counter: PrefixCounter, metrics: bool) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:
            pass

        def _send(self, body: bytes | dict, content_type: str = "application/json") -> None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == "/metrics":
                if not metrics:
                    return self._send(b"# no engine metrics\n", "text/plain")
                with counter.lock:
                    text = (f'vllm:prefix_cache_queries_total{{model_name="base"}} {float(counter.queries)}\n'
                            f'vllm:prefix_cache_hits_total{{model_name="base"}} {float(counter.hits)}\n')
                return self._send(text.encode(), "text/plain; version=0.0.4")
            self._send({"object": "list", "data": [{"id": m, "object": "model"} for m in MODELS]})

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.path.startswith("/reset_prefix_cache"):
                with counter.lock:
                    counter.seen = []
                return self._send({"success": True})
            request = json.loads(body)
            prompt = request.get("prompt") or json.dumps(request.get("messages"))
            prompt = prompt[0] if isinstance(prompt, list) else prompt
            text = answer(prompt, request.get("stop") or [])
            counter.add(prompt)
            completion = (request.get("max_tokens") or 12) if request.get("ignore_eos") else 12
            usage = {"prompt_tokens": len(prompt) // 4, "completion_tokens": completion,
                     "total_tokens": len(prompt) // 4 + completion}
            if "messages" in request:
                choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                kind = "chat.completion"
            else:
                choice = {"index": 0, "text": text, "finish_reason": "stop", "logprobs": None}
                kind = "text_completion"
            self._send({"id": "stub", "object": kind, "created": 0, "model": request.get("model"),
                        "choices": [choice], "usage": usage})

    return Handler


@contextlib.contextmanager
def running() -> Iterator[str]:
    """This stub in a child process on a free port of 127.0.0.1: yields its ``…/v1``
    URL once it answers, and stops it by its process id on the way out."""
    import httpx

    from autoact.serving.vllm_server import free_port

    port = free_port()
    stub = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), str(port)])
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 60  # a busy machine starts Python slowly
        while True:
            try:
                httpx.get(f"{url}/models", timeout=1.0)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or stub.poll() is not None:
                    raise RuntimeError(f"the stub server on port {port} did not start") from None
                time.sleep(0.05)
        yield url
    finally:
        stub.terminate()
        stub.wait(10)


def main(argv: list[str]) -> None:
    if not argv or not argv[0].isdigit():
        raise SystemExit(__doc__)
    server = ThreadingHTTPServer(("127.0.0.1", int(argv[0])), handler(PrefixCounter(), "--no-metrics" not in argv))
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
