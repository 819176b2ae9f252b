"""The chat app's answers to bad requests and to a model server that is down or
refuses: 4xx / 503 with a short ``{"detail": ...}``, never a bare 500, never a large
input echoed back; the request limits; the API key.

Fast: the app runs in process (TestClient) on scripted models, or on real model
clients pointed at a closed port or at a tiny fake OpenAI-style server on 127.0.0.1.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fastapi.testclient import TestClient

from autoact.app.chat_app import DEFAULT_MAX_BODY_BYTES, MAX_JSON_DEPTH, create_app, json_depth
from autoact.serving.endpoint import API_KEY_ENV
from autoact.serving.vllm_server import ServerError, list_models
from graph_fakes import CONTEXT, QUESTION, fake_backend
from live_servers import local_port
from test_chat_app import fake_models, parse_sse, turn

DEEP = "[" * 50_000 + "]" * 50_000
TEN_MB_QUESTION = "x" * (10 * 1024 * 1024)
REFUSAL = "temperature must be non-negative, got -1.0"
ANSWER = "Thought: I know it.\nAction: Finish[Seine]"


def scripted_app(**options) -> TestClient:
    # CONTEXT is the chat prompt format, which CodeAct refuses
    app = create_app(context=CONTEXT, models=fake_models(), backend=fake_backend(), graphs=("group", "react"),
                     **options)
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture()
def client():
    with scripted_app() as c:
        yield c


def short_json_error(r, status: int) -> str:
    """The reply is ``status`` with a short JSON ``{"detail": ...}``; returns its text."""
    assert r.status_code == status, r.text[:500]
    assert r.headers["content-type"].startswith("application/json")
    assert len(r.content) < 2000, f"a {len(r.content)}-byte error reply"
    return json.dumps(r.json()["detail"])


# ---- bad input: 4xx, short, nothing echoed -------------------------------------------------------------
@pytest.mark.parametrize("endpoint", ["invoke", "batch", "stream", "stream_log"])
def test_invalid_utf8_body_is_a_400(client, endpoint):
    body = b'{"input": {"messages": [{"type": "human", "content": "caf\xe9 \xff"}]}}'
    assert "not valid UTF-8" in short_json_error(client.post(f"/group/{endpoint}", content=body), 400)


@pytest.mark.parametrize("where", ["input", "body"])
@pytest.mark.parametrize("endpoint", ["invoke", "stream"])
def test_json_nested_50k_deep_is_a_400(client, endpoint, where):
    body = '{"input": {"messages": %s}}' % DEEP if where == "input" else DEEP
    detail = short_json_error(client.post(f"/group/{endpoint}", content=body.encode()), 400)
    assert f"the limit is {MAX_JSON_DEPTH}" in detail


def test_brackets_inside_strings_are_not_nesting(client):
    question = "Which river? " + "[{" * 200 + "\\\"" + "}]" * 200
    assert json_depth(json.dumps({"q": question})) == 1
    r = client.post("/group/invoke", json={"input": turn(question)})
    assert r.status_code == 200, r.text[:500]
    assert r.json()["output"]["content"] == "Seine"


@pytest.mark.parametrize("endpoint", ["invoke", "stream"])
def test_a_10_mb_question_is_refused_by_size_and_not_echoed(client, endpoint):
    r = client.post(f"/group/{endpoint}", json={"input": turn(TEN_MB_QUESTION)})
    assert f"limit of {DEFAULT_MAX_BODY_BYTES} bytes" in short_json_error(r, 413)
    assert "xxxxxxxxxx" not in r.text


def test_the_body_limit_counts_a_chunked_body():
    with scripted_app(max_body_bytes=4096) as c:
        def chunks():
            yield b'{"input": {"messages": [{"type": "human", "content": "'
            for _ in range(10):
                yield b"y" * 1000
            yield b'"}]}}'

        r = c.post("/group/invoke", content=chunks())
        assert "content-length" not in {k.lower() for k in r.request.headers}
        assert "limit of 4096 bytes" in short_json_error(r, 413)
        # the same turn within the limit is answered
        ok = c.post("/group/invoke", json={"input": turn("y" * 1000)})
        assert ok.status_code == 200 and ok.json()["output"]["content"] == "Seine"


def test_a_10_mb_question_under_a_larger_body_limit_meets_the_question_limit():
    with scripted_app(max_body_bytes=20 * 1024 * 1024) as c:
        r = c.post("/group/invoke", json={"input": turn(TEN_MB_QUESTION)})
        detail = short_json_error(r, 422)
        assert f"the question is {len(TEN_MB_QUESTION)} characters long; the limit is 8000" in detail
        assert "xxxxxxxxxx" not in r.text


def test_the_question_limit_is_configurable():
    with scripted_app(max_question_chars=40) as c:
        assert "the limit is 40" in short_json_error(c.post("/react/invoke", json={"input": turn("q" * 41)}), 422)
        r = c.post("/react/invoke", json={"input": turn("q" * 40)})
        assert r.status_code == 200 and r.json()["output"]["content"] == "Seine"
        # /batch validates each input outside LangServe's 422 translation
        r = c.post("/group/batch", json={"inputs": [turn("ok?"), turn("q" * 41)]})
        assert "the limit is 40" in short_json_error(r, 422)
        assert "qqqqqqqqqq" not in r.text


def test_validation_errors_do_not_echo_the_input(client):
    long_answer = "Paris " * 300
    r = client.post("/group/invoke", json={"input": {"messages": [{"type": "ai", "content": long_answer}]}})
    assert "must be the user's question" in short_json_error(r, 422)
    assert "Paris Paris" not in r.text


def test_a_bad_content_length_is_a_400(client):
    r = client.post("/group/invoke", content=b"{}", headers={"content-length": "lots"})
    assert "Content-Length" in short_json_error(r, 400)


# ---- the model server down: 503, for streams too ------------------------------------------------------
@pytest.fixture()
def closed_port_client():
    port = local_port()  # nothing listens there
    app = create_app(context={"task": "fake", "base_url": f"http://127.0.0.1:{port}/v1"}, backend=fake_backend(),
                     graphs=("group",))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c, port


@pytest.mark.parametrize("endpoint", ["invoke", "batch", "stream", "stream_log", "stream_events"])
def test_unreachable_model_server_is_a_503_before_any_stream_starts(closed_port_client, endpoint):
    c, port = closed_port_client
    payload = {"inputs": [turn()]} if endpoint == "batch" else {"input": turn()}
    with c.stream("POST", f"/group/{endpoint}", json=payload) as r:
        r.read()
    assert f"cannot reach the model server at http://127.0.0.1:{port}/v1" in short_json_error(r, 503)
    assert not r.headers["content-type"].startswith("text/event-stream")


# ---- a fake model server that refuses -------------------------------------------------------------------
class FakeModelServer:
    """A tiny OpenAI-style server on 127.0.0.1 at a free port: ``GET /v1/models``
    lists ``base``; every POST is answered with ``status`` and an OpenAI-style error
    body, or (``status`` 200) with :data:`ANSWER` as a completion. With ``api_key``
    every request needs it (401 otherwise). Records each request's method, path and
    Authorization header."""

    def __init__(self, status: int = 400, message: str = REFUSAL, api_key: str | None = None):
        self.status, self.message, self.api_key = status, message, api_key
        self.requests: list[tuple[str, str, str | None]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _authorized(self) -> bool:
                auth = self.headers.get("Authorization")
                owner.requests.append((self.command, self.path, auth))
                if owner.api_key and auth != f"Bearer {owner.api_key}":
                    self._reply(401, {"error": "Unauthorized"})
                    return False
                return True

            def do_GET(self):  # noqa: N802
                if self._authorized():
                    if self.path.rstrip("/") == "/v1/models":
                        self._reply(200, {"object": "list", "data": [{"id": "base", "object": "model"}]})
                    else:
                        self._reply(404, {"error": {"message": "not found", "code": 404}})

            def do_POST(self):  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if not self._authorized():
                    return
                if owner.status != 200:
                    self._reply(owner.status, {"error": {"message": owner.message, "type": "BadRequestError",
                                                         "param": None, "code": owner.status}})
                    return
                usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
                if self.path.endswith("/chat/completions"):
                    choice = {"index": 0, "message": {"role": "assistant", "content": ANSWER}, "finish_reason": "stop"}
                    kind = "chat.completion"
                else:
                    choice = {"index": 0, "text": ANSWER, "logprobs": None, "finish_reason": "stop"}
                    kind = "text_completion"
                self._reply(200, {"id": "x", "object": kind, "created": 0, "model": "base", "choices": [choice],
                                  "usage": usage})

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "FakeModelServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)
        assert not self.thread.is_alive()


def app_on(url: str, **options) -> TestClient:
    app = create_app(context={"task": "fake", "base_url": url, "max_steps": 2}, backend=fake_backend(),
                     graphs=("group",), **options)
    return TestClient(app, raise_server_exceptions=False)


@pytest.mark.parametrize("status, expected", [(400, 400), (422, 422), (404, 502)])
def test_the_model_servers_refusal_carries_its_message(status, expected):
    with FakeModelServer(status=status) as server, app_on(server.base_url) as c:
        r = c.post("/group/invoke", json={"input": turn()})
        detail = short_json_error(r, expected)
        assert REFUSAL in detail and f"({status})" in detail
        # the run did reach the fake server's generation endpoint
        assert any(method == "POST" and "/completions" in path for method, path, _ in server.requests)


# ---- the API key -------------------------------------------------------------------------------------------
def test_the_api_key_is_required_on_every_route():
    with scripted_app(api_key="s3cret") as c:
        for method, path, body in [("POST", "/group/invoke", {"input": turn()}), ("GET", "/health", None),
                                   ("GET", "/group/playground/", None), ("POST", "/react/stream", {"input": turn()})]:
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret"}):
                r = c.request(method, path, json=body, headers=headers)
                assert "API key" in short_json_error(r, 401), (method, path, headers)
                assert r.headers["www-authenticate"] == "Bearer"
        good = {"Authorization": "Bearer s3cret"}
        r = c.post("/group/invoke", json={"input": turn()}, headers=good)
        assert r.status_code == 200 and r.json()["output"]["content"] == "Seine"
        assert c.get("/health", headers=good).json()["status"] == "ok"
        # the key is checked before the body is read: no 413 for the unauthenticated
        assert c.post("/group/invoke", content=b"x" * (2 * DEFAULT_MAX_BODY_BYTES)).status_code == 401


def test_the_api_key_comes_from_the_environment_unless_turned_off(monkeypatch):
    monkeypatch.setenv(API_KEY_ENV, "from-env")
    with scripted_app() as c:
        assert c.get("/health").status_code == 401
        assert c.get("/health", headers={"Authorization": "Bearer from-env"}).status_code == 200
    with scripted_app(api_key="") as c:
        assert c.get("/health").status_code == 200


def test_model_clients_send_the_api_key(monkeypatch):
    """The app's real model clients (model list and completions) send AUTOACT_API_KEY;
    without it the key-protected server's 401 is named."""
    monkeypatch.setenv(API_KEY_ENV, "k-123")
    with FakeModelServer(status=400, api_key="k-123") as server:
        assert list_models(server.base_url) == ["base"]
        with app_on(server.base_url) as c:
            r = c.post("/group/invoke", json={"input": turn()}, headers={"Authorization": "Bearer k-123"})
            assert REFUSAL in short_json_error(r, 400)  # past the key: the fake's refusal
        paths = {(method, path.split("?")[0]) for method, path, _ in server.requests}
        assert ("GET", "/v1/models") in paths and any(m == "POST" for m, _ in paths)
        assert {auth for _, _, auth in server.requests} == {"Bearer k-123"}

        monkeypatch.delenv(API_KEY_ENV)
        with pytest.raises(ServerError, match=f"401 Unauthorized: it requires an API key: set {API_KEY_ENV}"):
            list_models(server.base_url)
        with pytest.raises(ServerError, match="the API key was refused"):
            list_models(server.base_url, api_key="wrong")
        with app_on(server.base_url) as c:  # the model server refuses the app: 503, named
            r = c.post("/group/invoke", json={"input": turn()})
            assert "requires an API key" in short_json_error(r, 503)


def test_a_stream_runs_when_the_model_server_answers():
    """The reachability check lets a stream through to a server that answers."""
    with FakeModelServer(status=200) as server, app_on(server.base_url) as c:
        with c.stream("POST", "/group/stream", json={"input": turn(QUESTION)}) as r:
            assert r.status_code == 200
            events = parse_sse(r.read().decode())
        assert [name for name, _ in events][-1] == "end", events
        data = [payload for name, payload in events if name == "data"]
        assert data[-1]["type"] == "AIMessageChunk"
        assert data[-1]["response_metadata"]["episode"]["question"] == QUESTION
        assert ("GET", "/v1/models") in {(m, p) for m, p, _ in server.requests}
