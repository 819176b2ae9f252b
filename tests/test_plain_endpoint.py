"""A plain OpenAI-compatible endpoint (``server.kind = "openai"``): every role asks for
``server.model_name`` and no request carries vLLM's extensions (prefill continuation,
structured outputs, top_k). A real HTTP server on 127.0.0.1 stands in for llama.cpp
or a hosted API: it answers the OpenAI API and records every request body."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from langchain_core.messages import HumanMessage

from autoact.eval.runner import run_eval
from autoact.graph.registry import graph_kind
from autoact.serving.endpoint import model_endpoint
from autoact.serving.vllm_server import ServerError, VLLMServer
from autoact.settings import Settings, SettingsError
from autoact.tools import load_task
from graph_fakes import invoke

MODEL = "plain-model"
VLLM_FIELDS = ("top_k", "structured_outputs", "continue_final_message", "add_generation_prompt", "guided_regex")


class PlainServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), PlainHandler)
        self.requests: list[tuple[str, dict]] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class PlainHandler(BaseHTTPRequestHandler):
    server: PlainServer

    def log_message(self, *args) -> None:  # quiet
        pass

    def _send(self, body: dict, status: int = 200) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802
        if self.path.rstrip("/") == "/v1/models":
            self._send({"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "test"}]})
        else:
            self._send({"error": "not found"}, 404)

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.server.lock:
            self.server.requests.append((self.path, body))
        usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
        if self.path == "/v1/completions":  # a transcript prompt ends with "Thought:"
            self._send({"id": "c", "object": "text_completion", "model": body["model"], "usage": usage,
                        "choices": [{"index": 0, "text": " I know it.\nAction: Finish[Velmora]",
                                     "finish_reason": "stop"}]})
        elif self.path == "/v1/chat/completions":
            message = {"role": "assistant", "content": "Thought: I know it.\nAction: Finish[Velmora]"}
            self._send({"id": "c", "object": "chat.completion", "model": body["model"], "usage": usage,
                        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}]})
        else:
            self._send({"error": "not found"}, 404)


@pytest.fixture
def plain():
    server = PlainServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def plain_settings(tmp_path, url: str) -> Settings:
    return Settings(run_dir=tmp_path / "run", home=tmp_path / "home",
                    server={"kind": "openai", "base_url": url, "model_name": MODEL},
                    sampling={"top_k": 20})


@pytest.mark.parametrize("prompt_format,path", [("transcript", "/v1/completions"), ("chat", "/v1/chat/completions")])
def test_a_graph_on_a_plain_endpoint_sends_the_named_model_and_no_vllm_fields(plain, tmp_path, prompt_format, path):
    settings = plain_settings(tmp_path, plain.url)
    question = load_task("demo").split("test")[0]
    graph = graph_kind("react").build(settings=settings, name="react")
    out = invoke(graph, {"messages": [HumanMessage(question.question)], "instance": question.to_dict()},
                 context={"task": "demo", "tools": ["Retrieve"], "reflect": False, "prompt_format": prompt_format})
    assert out["answer"] == "Velmora" and out["halt_reason"] == "finish"
    assert [p for p, _ in plain.requests] == [path]
    body = plain.requests[0][1]
    assert body["model"] == MODEL
    assert not [f for f in VLLM_FIELDS if f in body], body
    if prompt_format == "chat":  # no opened assistant turn to continue
        assert body["messages"][-1]["role"] != "assistant"


def test_the_evaluation_runs_on_a_plain_endpoint_without_starting_a_server(plain, tmp_path):
    settings = plain_settings(tmp_path, plain.url)
    result = run_eval(settings, "demo", ["react", "cot"], tmp_path / "eval", limit=1, serve=False)
    assert result["questions"] >= 1
    bodies = [b for _, b in plain.requests]
    assert bodies and {b["model"] for b in bodies} == {MODEL}
    assert not [f for b in bodies for f in VLLM_FIELDS if f in b]
    with model_endpoint(settings, None, serve=True) as url:  # answers: nothing is started
        assert url == plain.url


def test_a_plain_endpoint_must_be_named_and_is_never_given_adapters(tmp_path):
    with pytest.raises(SettingsError, match="needs server.base_url"):
        Settings(server={"kind": "openai", "model_name": MODEL})
    with pytest.raises(SettingsError, match="needs server.base_url"):
        Settings(server={"kind": "openai", "base_url": "http://127.0.0.1:9/v1"})
    settings = Settings(home=tmp_path, server={"kind": "openai", "base_url": "http://127.0.0.1:9/v1",
                                              "model_name": MODEL})
    with pytest.raises(ServerError, match="needs a vLLM server"):
        VLLMServer(settings, "some/model", base_url=settings.server.base_url)
