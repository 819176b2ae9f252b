"""The LangServe chat app.

Fast tests run the app in process on scripted models and the fake task; the slow ones
serve it with ``autoact serve-chat`` (uvicorn, a subprocess) against a real vLLM
server, drive the chat playground in headless Chromium and send 20 requests at once.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage

from autoact.app.cli import build_parser, main
from autoact.app.chat_app import ChatTurn, create_app, graph_contexts
from autoact.app.ask_commands import context_values
from graph_fakes import CONTEXT, QUESTION, ScriptedChatModel, fake_backend
from live_servers import AppProcess, local_port, vllm_endpoint

RIGHT = "Thought: The observation says so.\nAction: Reflect[right]"
HALT_REASONS = {"finish", "max_reflections", "max_steps", "context", "parse_error"}


def looping(*texts: str, times: int = 30) -> ScriptedChatModel:
    """A scripted model that can answer the same episode several times."""
    return ScriptedChatModel(responses=list(texts) * times, calls=[], call_kwargs=[])


def fake_models() -> dict:
    return {
        "plan": looping("Thought: I need the city of the tower.\nAction: Retrieve",
                        "Thought: The river is the Seine.\nAction: Finish"),
        "tool": looping("Eiffel Tower", "Seine"),
        "reflect": looping(RIGHT),
        "meta": looping("Thought: I look up the tower.\nAction: Retrieve[Eiffel Tower]",
                        "Thought: It is by the Seine.\nAction: Finish[Seine]", RIGHT),
    }


@pytest.fixture()
def client():
    # CONTEXT is the chat prompt format, which CodeAct refuses: /codeact has its own app below
    app = create_app(context=CONTEXT, models=fake_models(), backend=fake_backend(), graphs=("group", "react"))
    with TestClient(app) as c:
        yield c


def turn(question: str = QUESTION, history: list | None = None) -> dict:
    return {"messages": [*(history or []), {"type": "human", "content": question}]}


# ---- in process, scripted models -------------------------------------------------------------------
def test_invoke_returns_the_answer_with_the_episode(client):
    r = client.post("/group/invoke", json={"input": turn()})
    assert r.status_code == 200, r.text
    out = r.json()["output"]
    assert (out["type"], out["content"]) == ("ai", "Seine")
    episode = out["response_metadata"]["episode"]
    assert [s["action"] for s in episode["trajectory"]] == ["Retrieve", "Finish"]
    assert episode["trajectory"][0]["observation"] == "The Eiffel Tower is a lattice tower in Paris."
    assert episode["reflections"] == [{"thought": "The observation says so.", "verdict": "right"}]
    assert (episode["answer"], episode["halt_reason"], episode["question"]) == ("Seine", "finish", QUESTION)
    assert out["response_metadata"]["graph"] == "group"
    roles = episode["usage"]
    assert {r: u["calls"] for r, u in roles.items()} == {"plan": 2, "tool": 2, "reflect": 1}
    usage = out["usage_metadata"]
    assert usage["input_tokens"] == sum(u["prompt_tokens"] for u in roles.values()) > 0
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]


def test_react_route_and_the_earlier_turns_are_carried(client):
    history = [{"type": "human", "content": "Hello"}, {"type": "ai", "content": "Hi, ask me a question."}]
    r = client.post("/react/invoke", json={"input": turn(history=history)})
    assert r.status_code == 200, r.text
    out = r.json()["output"]
    assert out["content"] == "Seine" and out["response_metadata"]["graph"] == "react"
    assert out["response_metadata"]["episode"]["question"] == QUESTION  # the last message is the question


def test_batch_answers_each_input(client):
    r = client.post("/group/batch", json={"inputs": [turn(), turn()]})
    assert r.status_code == 200, r.text
    assert [o["content"] for o in r.json()["output"]] == ["Seine", "Seine"]


def test_stream_sends_the_answer_as_a_message_chunk(client):
    with client.stream("POST", "/group/stream", json={"input": turn()}) as r:
        assert r.status_code == 200
        events = parse_sse(r.read().decode())
    data = [payload for name, payload in events if name == "data"]
    assert events[-1][0] == "end" and len(data) == 1
    assert data[0]["type"] == "AIMessageChunk" and data[0]["content"] == "Seine"
    assert data[0]["response_metadata"]["episode"]["halt_reason"] == "finish"


def test_stream_log_ends_with_the_chunk_the_playground_renders(client):
    """The playground renders ``final_output`` only when it is a string or an
    ``AIMessage``/``AIMessageChunk`` by its serialized type name."""
    with client.stream("POST", "/group/stream_log", json={"input": turn()}) as r:
        assert r.status_code == 200
        body = r.read().decode()
    assert final_answer(body) == "Seine"
    finals = [op["value"] for name, p in parse_sse(body) if name == "data" for op in p["ops"]
              if op["path"] == "/final_output" and op.get("value")]
    assert finals[-1]["type"] == "AIMessageChunk"
    # the graph's nodes are logged as sub-runs
    paths = {op["path"].split("/")[2] for name, p in parse_sse(body) if name == "data" for op in p["ops"]
             if op["path"].startswith("/logs/")}
    assert {"plan", "tool", "execute", "reflect", "finalize"} <= {p.split(":")[0] for p in paths}


def test_stream_events_reports_the_graph_nodes(client):
    with client.stream("POST", "/group/stream_events", json={"input": turn()}) as r:
        assert r.status_code == 200
        events = [p for name, p in parse_sse(r.read().decode()) if name == "data"]
    kinds = {(e["event"], e["name"]) for e in events}
    assert ("on_chain_start", "plan") in kinds and ("on_chat_model_end", "ScriptedChatModel") in kinds
    assert events[-1]["event"] == "on_chain_end" and events[-1]["data"]["output"]["content"] == "Seine"


@pytest.mark.parametrize(
    "payload, fragment",
    [
        ({"input": {"messages": []}}, "at least 1 item"),
        ({"input": turn("   ")}, "the question) is empty"),
        ({"input": {"messages": [{"type": "ai", "content": "Paris"}]}}, "must be the user's question"),
        ({"input": {"messages": [{"type": "nonsense", "content": "x"}]}}, "messages"),
        ({"input": {"messages": "Which river?"}}, "valid list"),
        ({"input": {"question": "Which river?"}}, "Extra inputs are not permitted"),
        ({"input": "Which river?"}, "valid dictionary"),
        ({"inputs": turn()}, "input"),
    ],
)
@pytest.mark.parametrize("endpoint", ["invoke", "stream"])
def test_bad_input_is_refused_with_a_clear_422(client, endpoint, payload, fragment):
    r = client.post(f"/group/{endpoint}", json=payload)
    assert r.status_code == 422, r.text
    assert fragment in r.text


def test_bad_batch_input_is_refused(client):
    r = client.post("/group/batch", json={"inputs": [turn(), {"messages": []}]})
    assert r.status_code == 422 and "at least 1 item" in r.text
    assert client.post("/group/invoke", content=b"{not json").status_code == 422


def test_schemas_fit_the_chat_playground(client):
    """The chat playground shows its chat window only for an input with one array
    key and an output it recognises as an AI message (``anyOf`` with ``type.enum``)."""
    inp = client.get("/group/input_schema").json()
    assert list(inp["properties"]) == ["messages"] and inp["properties"]["messages"]["type"] == "array"
    out = client.get("/group/output_schema").json()
    options = [resolve(out, o) for o in out["anyOf"]]
    assert any("ai" in o["properties"]["type"].get("enum", []) for o in options)
    page = client.get("/group/playground/")
    assert page.status_code == 200 and "Chat Playground" in page.text
    assert client.get("/", follow_redirects=False).headers["location"] == "/group/playground/"


def test_no_model_server_gives_503():
    port = local_port()  # nothing listens there
    app = create_app(context={"task": "fake", "base_url": f"http://127.0.0.1:{port}/v1"}, backend=fake_backend(),
                     graphs=("group",))
    with TestClient(app) as c:
        r = c.post("/group/invoke", json={"input": turn()})
    assert r.status_code == 503 and f"127.0.0.1:{port}" in r.json()["detail"]


def test_chat_turn_runs_directly_and_streams():
    from autoact.graph import build_group_graph

    graph = build_group_graph(fake_models(), backend=fake_backend())
    chat = ChatTurn(graph, CONTEXT, "group")
    reply = chat.invoke({"messages": [HumanMessage(content=QUESTION)]})
    assert isinstance(reply, AIMessage) and reply.content == "Seine"
    chunks = list(chat.stream({"messages": [HumanMessage(content=QUESTION)]}))
    assert len(chunks) == 1 and isinstance(chunks[0], AIMessageChunk) and chunks[0].content == "Seine"
    assert asyncio.run(chat.ainvoke({"messages": [HumanMessage(content=QUESTION)]})).content == "Seine"
    with pytest.raises(ValueError, match="must be the user's question"):
        chat.invoke({"messages": [AIMessage(content="hi")]})


def test_graph_contexts_are_validated_per_graph():
    ctx = graph_contexts({"task": "demo", "mode": "one_pass", "max_steps": 3, "tools": None}, ("group", "react"))
    assert ctx["group"] == {"task": "demo", "mode": "one_pass", "max_steps": 3}
    assert ctx["react"] == {"task": "demo", "max_steps": 3}  # mode is the group graph's only
    with pytest.raises(ValueError, match="unknown context field"):
        graph_contexts({"max_stepz": 3}, ("group",))
    with pytest.raises(ValueError, match="max_steps"):
        graph_contexts({"max_steps": 0}, ("group",))
    with pytest.raises(ValueError, match="unknown graph"):
        graph_contexts({}, ("lumos",))
    with pytest.raises(ValueError, match="unknown context field"):
        graph_contexts({"mode": "one_pass"}, ("react",))  # no mounted graph takes it


# ---- /codeact ------------------------------------------------------------------------------------
def code_turn(thought: str, code: str) -> str:
    return f" {thought}\n```python\n{code}\n```"


def codeact_app(*replies: str) -> TestClient:
    """The app as ``serve-chat`` mounts it by default, the CodeAct agent (role meta) scripted."""
    models = {**fake_models(), "meta": looping(*replies)}
    return TestClient(create_app(context={"task": "fake"}, models=models, backend=fake_backend()))


def test_codeact_route_and_playground_beside_group_and_react():
    with codeact_app(code_turn("Read the page.", "print(retrieve('Eiffel Tower'))"),
                     code_turn("Paris is on the Seine.", "finish('Seine')")) as c:
        health = c.get("/health").json()
        assert health["graphs"] == ["group", "react", "codeact"]
        assert health["context"]["codeact"] == {"task": "fake", "plain_answer_ends": True}
        page = c.get("/codeact/playground/")
        assert page.status_code == 200 and "Chat Playground" in page.text
        assert list(c.get("/codeact/input_schema").json()["properties"]) == ["messages"]
        r = c.post("/codeact/invoke", json={"input": turn()})
        assert r.status_code == 200, r.text
        out = r.json()["output"]
        assert out["content"] == "Seine" and out["response_metadata"]["graph"] == "codeact"
        episode = out["response_metadata"]["episode"]
        assert [(s["action"], s.get("status")) for s in episode["trajectory"]] == [
            ("Code", "ok"), ("Code", "ok"), ("Finish", None)]
        assert episode["trajectory"][0]["observation"] == "The Eiffel Tower is a lattice tower in Paris."
        # what the playground renders (the browser test reads the same)
        with c.stream("POST", "/codeact/stream_log", json={"input": turn()}) as s:
            assert s.status_code == 200
            output = final_output(s.read().decode())
        assert output["content"] == "Seine" and output["response_metadata"]["graph"] == "codeact"
        assert [step["action"] for step in output["response_metadata"]["episode"]["trajectory"]] == [
            "Code", "Code", "Finish"]


def test_in_the_chat_a_codeact_reply_in_plain_words_is_the_answer():
    with codeact_app(" Hello! Ask me about places.") as c:
        r = c.post("/codeact/invoke", json={"input": turn("Hi")})
    assert r.status_code == 200, r.text
    out = r.json()["output"]
    assert out["content"] == "Hello! Ask me about places."
    episode = out["response_metadata"]["episode"]
    assert episode["halt_reason"] == "finish" and [s["action"] for s in episode["trajectory"]] == ["Finish"]


def test_the_codeact_route_is_refused_at_startup_without_a_sandbox(monkeypatch):
    from autoact.tools import sandbox

    def unavailable():
        raise sandbox.SandboxUnavailable("the Python sandbox cannot isolate code here (no bwrap).")

    monkeypatch.setattr(sandbox, "ensure_python_tool", unavailable)
    with pytest.raises(ValueError, match=r"codeact route runs code, but .*no bwrap.*--graphs group,react"):
        create_app(context={"task": "fake"}, models=fake_models(), backend=fake_backend(), preload=True)
    create_app(context={"task": "fake"}, models=fake_models(), backend=fake_backend(), preload=True,
               graphs=("group", "react"))


def test_codeact_and_baseline_contexts():
    ctx = graph_contexts({"task": "demo", "max_trials": 3}, ("codeact", "cot", "reflexion"))
    assert ctx == {"codeact": {"task": "demo", "plain_answer_ends": True}, "cot": {"task": "demo"},
                   "reflexion": {"task": "demo", "max_trials": 3}}
    assert graph_contexts({"plain_answer_ends": False}, ("codeact",)) == {"codeact": {"plain_answer_ends": False}}
    with pytest.raises(ValueError, match="prompt_format"):  # CodeAct prompts are transcripts
        graph_contexts({"prompt_format": "chat"}, ("codeact",))


def test_serve_chat_options_become_the_context():
    args = build_parser().parse_args(
        ["serve-chat", "--port", "9001", "--tools", "Retrieve, Lookup", "--max-steps", "4", "--no-reflect"]
    )
    assert (args.port, args.host, args.graphs) == (9001, "127.0.0.1", "group,react,codeact")
    assert context_values(args) == {"tools": ["Retrieve", "Lookup"], "max_steps": 4, "reflect": False}


def test_serve_chat_fails_clearly_without_a_model_server(capsys):
    port = local_port()
    assert main(["serve-chat", "--base-url", f"http://127.0.0.1:{port}/v1", "--no-serve"]) == 1
    assert f"cannot reach the model server at http://127.0.0.1:{port}/v1" in capsys.readouterr().err


# ---- helpers ------------------------------------------------------------------------------------------
def parse_sse(text: str) -> list[tuple[str, object]]:
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        name, data = None, []
        for line in block.splitlines():
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
        if name:
            events.append((name, json.loads("\n".join(data)) if data else None))
    return events


def resolve(schema: dict, node: dict) -> dict:
    ref = node.get("$ref")
    return schema["$defs"][ref.rsplit("/", 1)[-1]] if ref else node


# ---- real servers ---------------------------------------------------------------------------------------
#: Short episodes: greedy, few steps, short outputs, no retry after Reflect[wrong].
APP_OPTIONS = ["--max-steps", "2", "--max-tokens", "40", "--max-reflections", "0", "--temperature", "0"]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@pytest.fixture(scope="module")
def vllm_url(real_settings, embedded_model):
    with vllm_endpoint(real_settings, embedded_model) as url:
        yield url


@pytest.fixture(scope="module")
def chat_server(vllm_url, tmp_path_factory):
    """``autoact serve-chat`` on a free port, for the module; stopped by process group."""
    tmp = tmp_path_factory.mktemp("serve-chat")
    port = local_port()
    cmd = [sys.executable, "-m", "autoact.app.cli", "serve-chat", "--base-url", vllm_url, "--no-serve",
           "--port", str(port), "--run", str(tmp / "run"), *APP_OPTIONS]
    app = AppProcess(cmd, tmp / "serve-chat.log", cwd=tmp)
    try:
        app.wait_http(f"http://127.0.0.1:{port}/health", timeout=180)
        yield f"http://127.0.0.1:{port}"
    finally:
        app.stop()
        assert app.is_gone()


@pytest.fixture(scope="module")
def demo_questions():
    from autoact.tools import load_task

    return [i.question for i in load_task("demo").instances]


def check_reply(out: dict) -> dict:
    assert out["type"] == "ai" and out["content"].strip()
    episode = out["response_metadata"]["episode"]
    assert episode["halt_reason"] in HALT_REASONS and episode["trajectory"]
    assert out["usage_metadata"]["input_tokens"] > 0 and out["usage_metadata"]["output_tokens"] > 0
    if episode["answer"]:
        assert out["content"] == episode["answer"]
    return episode


@pytest.mark.slow
def test_served_app_answers_invoke_batch_and_stream(chat_server, demo_questions):
    with httpx.Client(base_url=chat_server, timeout=600) as http:
        start = time.perf_counter()
        r = http.post("/group/invoke", json={"input": turn(demo_questions[0])})
        took = time.perf_counter() - start
        assert r.status_code == 200, r.text
        episode = check_reply(r.json()["output"])
        assert episode["question"] == demo_questions[0]
        print(f"\n[group /invoke] {took:.1f} s, halt={episode['halt_reason']}, answer={episode['answer']!r}")

        r = http.post("/react/batch", json={"inputs": [turn(q) for q in demo_questions[1:3]]})
        assert r.status_code == 200, r.text
        outs = r.json()["output"]
        assert len(outs) == 2
        for out, question in zip(outs, demo_questions[1:3]):
            assert check_reply(out)["question"] == question and out["response_metadata"]["graph"] == "react"

        with http.stream("POST", "/group/stream", json={"input": turn(demo_questions[0])}) as s:
            assert s.status_code == 200
            events = parse_sse(s.read().decode())
        chunks = [p for name, p in events if name == "data"]
        assert events[-1][0] == "end" and chunks and chunks[-1]["type"] == "AIMessageChunk"
        assert chunks[-1]["content"].strip()


@pytest.mark.slow
def test_served_app_refuses_bad_input(chat_server):
    with httpx.Client(base_url=chat_server, timeout=60) as http:
        r = http.post("/group/invoke", json={"input": {"messages": [{"type": "ai", "content": "hi"}]}})
        assert r.status_code == 422 and "must be the user's question" in r.text
        r = http.post("/group/invoke", json={"input": {"messages": []}})
        assert r.status_code == 422 and "at least 1 item" in r.text
        r = http.post("/group/stream", json={"input": {"text": "hi"}})
        assert r.status_code == 422 and "messages" in r.text


@pytest.mark.slow
@pytest.mark.parametrize("route", ["group", "codeact"])
def test_chat_playground_answers_in_headless_chromium(chat_server, demo_questions, repo_root, route):
    from playwright.sync_api import expect, sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"no browser at {CHROMIUM}: install it with `bash scripts/setup.sh --browser`")
    shot = repo_root / "test-artifacts" / f"chat_playground-{route}.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    question = demo_questions[1]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            # the chat window shows before the schemas arrive; a message sent then has no input key
            with page.expect_response("**/input_schema") as inp, page.expect_response("**/output_schema") as out:
                page.goto(f"{chat_server}/{route}/playground/")
            assert inp.value.ok and out.value.ok
            page.wait_for_load_state("networkidle")
            box = page.get_by_placeholder("Send a message...")
            expect(box).to_be_visible(timeout=30_000)
            # the page's /stream_log request goes through here, so the test reads the
            # same event stream the page renders (a browser keeps no body of a stream)
            streams: list[tuple[int, str]] = []

            def relay(route):
                response = route.fetch(timeout=600_000)
                streams.append((response.status, response.text()))
                route.fulfill(response=response)

            page.route(f"**/{route}/stream_log", relay)
            box.fill(question)
            start = time.perf_counter()
            box.press("Enter")
            deadline = time.monotonic() + 600
            while not streams and time.monotonic() < deadline:
                page.wait_for_timeout(500)
            took = time.perf_counter() - start
            assert streams, "the page sent no message to /stream_log"
            status, body = streams[0]
            assert status == 200, body[:500]
            output = final_output(body)
            answer = output["content"]
            assert answer.strip() and output["response_metadata"]["graph"] == route
            if route == "codeact":  # code turns, closed by finish(answer) or a plain answer
                steps = output["response_metadata"]["episode"]["trajectory"]
                assert {s["action"] for s in steps} <= {"Code", "Finish"}, steps
            # the conversation is shown as one text area per message (newest first)
            messages = page.locator("textarea:not([placeholder])")
            expect(messages).to_have_count(2, timeout=30_000)
            expect(messages.nth(0)).to_have_value(answer, timeout=30_000)
            expect(messages.nth(1)).to_have_value(question)
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000
    print(f"\n[playground /{route}] answer {answer!r} on the page after {took:.1f} s; screenshot {shot}")


def final_output(stream_log: str) -> dict:
    """The reply in a /stream_log response: the last final_output the patches set."""
    output = None
    for name, payload in parse_sse(stream_log):
        if name == "error":
            raise AssertionError(f"the stream failed: {payload}")
        if name != "data":
            continue
        for op in payload["ops"]:
            if op["path"] == "/final_output" and isinstance(op.get("value"), dict):
                output = op["value"]
    assert output is not None and output.get("content") is not None, "no final_output in the stream"
    return output


def final_answer(stream_log: str) -> str:
    """The answer in a /stream_log response."""
    return final_output(stream_log)["content"]


@pytest.mark.slow
def test_twenty_concurrent_invokes_all_succeed(chat_server, demo_questions):
    questions = [demo_questions[i % len(demo_questions)] for i in range(20)]

    async def one(http: httpx.AsyncClient, question: str) -> tuple[float, httpx.Response]:
        start = time.perf_counter()
        response = await http.post("/group/invoke", json={"input": turn(question)})
        return time.perf_counter() - start, response

    async def all_at_once():
        limits = httpx.Limits(max_connections=20)
        async with httpx.AsyncClient(base_url=chat_server, timeout=900, limits=limits) as http:
            start = time.perf_counter()
            results = await asyncio.gather(*(one(http, q) for q in questions))
            return time.perf_counter() - start, results

    wall, results = asyncio.run(all_at_once())
    failed = [(q, r.status_code, r.text[:200]) for q, (_, r) in zip(questions, results) if r.status_code != 200]
    assert not failed, failed
    for question, (_, response) in zip(questions, results):
        assert check_reply(response.json()["output"])["question"] == question
    latencies = sorted(t for t, _ in results)
    print(f"\n[load] 20 concurrent /group/invoke: all 200 in {wall:.1f} s wall; latency s "
          f"min {latencies[0]:.1f} median {statistics.median(latencies):.1f} max {latencies[-1]:.1f}; "
          f"all: {[round(t, 1) for t in latencies]}")
