"""A model server that answers something other than the OpenAI API (an HTML page,
a cut-off or empty body): the error names the endpoint URL and quotes the answer.

The "server" is a tiny http.server on 127.0.0.1 that gives one fixed answer to
every request; each test stops it at teardown.
"""

from __future__ import annotations

import asyncio
import http.server
import re
import threading

import pytest

from autoact.graph.context import ReactContext
from autoact.graph.models import ModelResolver
from autoact.serving.client import QUOTED_CHARS, ModelServerBadAnswer, chat_model, completion_model
from autoact.settings import Settings

HTML = "<html><head><title>502 Bad Gateway</title></head><body>" + "proxy says no " * 40 + "</body></html>"
COMPLETION = (
    '{"id": "c1", "object": "chat.completion", "created": 1, "model": "base", "choices": [{"index": 0, '
    '"text": "hello", "message": {"role": "assistant", "content": "hello"}, "finish_reason": "stop"}], '
    '"usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}'
)


@pytest.fixture
def answering(monkeypatch, tmp_path):
    """Start a server giving ``answering(body, content_type)`` to every GET and POST;
    returns its base URL (…/v1)."""
    monkeypatch.chdir(tmp_path)  # no config file of the repository's
    servers = []

    def start(body: str, content_type: str = "text/html") -> str:
        data = body.encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                self.rfile.read(int(self.headers.get("content-length") or 0))
                self.send_response(200)
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

            def log_message(self, *args) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)  # port 0: a free one
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        servers.append((server, thread))
        return f"http://127.0.0.1:{server.server_address[1]}/v1"

    yield start
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _quoted(message: str) -> str:
    return message.split(": ", 1)[1]


def test_a_model_list_that_is_not_json_names_the_endpoint(answering):
    url = answering(HTML)
    with pytest.raises(ModelServerBadAnswer) as caught:
        chat_model("plan", Settings(), url)
    message = str(caught.value)
    assert message.startswith(f"the model server at {url}/models answered with something other than a JSON model list")
    assert "'<html><head><title>502 Bad Gateway</title>" in message
    assert len(_quoted(message)) <= QUOTED_CHARS + 3  # the start of the page, not all of it
    # the graphs' resolver goes the same way
    with pytest.raises(ModelServerBadAnswer, match=f"{url}/models"):
        ModelResolver(settings=Settings()).get("meta", ReactContext(base_url=url))


@pytest.mark.parametrize("make, path", [(chat_model, "chat/completions"), (completion_model, "completions")])
@pytest.mark.parametrize("run", ["sync", "async"])
def test_a_completion_that_is_not_json_names_the_endpoint(answering, make, path, run):
    url = answering(HTML)
    model = make("plan", Settings(max_retries=0), url, served=["base"])
    with pytest.raises(ModelServerBadAnswer) as caught:
        model.invoke("Question: hi") if run == "sync" else asyncio.run(model.ainvoke("Question: hi"))
    assert str(caught.value).startswith(f"the model server at {url}/{path} answered with something other than")
    assert "502 Bad Gateway" in str(caught.value)


@pytest.mark.parametrize("body", ["<html>oops</html>", "{}", "[1, 2]", '{"choices": []}'])
def test_malformed_json_answers_are_quoted(answering, body):
    url = answering(body, content_type="application/json")
    model = chat_model("plan", Settings(max_retries=0), url, served=["base"])
    expected = re.escape(f"at {url}/chat/completions ") + ".*: " + re.escape(repr(body)) + "$"
    with pytest.raises(ModelServerBadAnswer, match=expected):
        model.invoke("hi")


def test_a_proper_answer_still_passes(answering):
    url = answering(COMPLETION, content_type="application/json")
    assert chat_model("plan", Settings(), url, served=["base"]).invoke("hi").content == "hello"
    assert completion_model("plan", Settings(), url, served=["base"]).invoke("hi") == "hello"
