"""The graphs under ``langgraph dev`` (the LangGraph Studio server), driven with the
LangGraph SDK against a real vLLM server: assistants (the project's graphs and the
baselines), context schemas, threads, a run of the group graph to its end, streamed
events."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from autoact.graph.baselines import ReflexionContext
from autoact.graph.codeact import CodeActContext
from autoact.graph.context import GroupContext, ReactContext
from live_servers import QUIET_ENV, AppProcess, local_port, vllm_endpoint

pytestmark = pytest.mark.slow

HALT_REASONS = {"finish", "max_reflections", "max_steps", "context", "parse_error"}
#: Short greedy episodes.
RUN_CONTEXT = {"max_steps": 2, "max_tokens": 40, "max_reflections": 0, "temperature": 0.0}


@pytest.fixture(scope="module")
def vllm_url(real_settings, embedded_model):
    with vllm_endpoint(real_settings, embedded_model) as url:
        yield url


@pytest.fixture(scope="module")
def dev_server(vllm_url, repo_root, tmp_path_factory):
    """``langgraph dev`` from the repository root (langgraph.json), on a free port; the
    model endpoint reaches the graphs through the settings' environment variable."""
    langgraph = Path(sys.executable).with_name("langgraph")
    port = local_port()
    cmd = [str(langgraph), "dev", "--no-browser", "--no-reload", "--port", str(port), "--host", "127.0.0.1"]
    # the log goes outside the repository: the server watches the tree
    log = tmp_path_factory.mktemp("langgraph-dev") / "langgraph-dev.log"
    app = AppProcess(cmd, log, cwd=repo_root, env={**QUIET_ENV, "AUTOACT_SERVER__BASE_URL": vllm_url})
    try:
        app.wait_http(f"http://127.0.0.1:{port}/ok", timeout=240)
        yield f"http://127.0.0.1:{port}"
    finally:
        app.stop()
        assert app.is_gone()


@pytest.fixture(scope="module")
def client(dev_server):
    from langgraph_sdk import get_sync_client

    return get_sync_client(url=dev_server)


@pytest.fixture(scope="module")
def demo_question():
    from autoact.tools import load_task

    return load_task("demo").instances[0].question


#: Every graph of langgraph.json, with its context schema.
GRAPH_SCHEMAS = {
    "group": GroupContext, "react": ReactContext, "codeact": CodeActContext,
    "cot": ReactContext, "plan_solve": ReactContext, "reflexion": ReflexionContext,
}


def test_assistants_list_every_graph(client):
    assistants = client.assistants.search(limit=20)
    assert {a["graph_id"] for a in assistants} >= set(GRAPH_SCHEMAS)


@pytest.mark.parametrize("graph_id, schema", GRAPH_SCHEMAS.items())
def test_context_schema_shows_every_field_with_its_description(client, graph_id, schema):
    assistant = next(a for a in client.assistants.search(graph_id=graph_id))
    schemas = client.assistants.get_schemas(assistant["assistant_id"])
    fields = schemas["context_schema"]["properties"]
    assert set(fields) == set(schema.model_fields)
    for name, field in schema.model_fields.items():
        assert field.description and fields[name]["description"] == field.description, name
    assert fields["max_steps"]["default"] == 8 and fields["max_steps"]["maximum"] == 64
    if graph_id == "group":
        assert set(fields["mode"]["enum"]) == {"iterative", "one_pass"}
    assert "messages" in schemas["input_schema"]["properties"]
    assert {"trajectory", "answer", "halt_reason", "usage"} <= set(schemas["output_schema"]["properties"])


def test_group_graph_runs_to_the_end_then_streams_a_second_turn(client, demo_question):
    thread = client.threads.create()
    start = time.perf_counter()
    out = client.runs.wait(
        thread["thread_id"], "group",
        input={"messages": [{"type": "human", "content": demo_question}]},
        context=RUN_CONTEXT,
    )
    took = time.perf_counter() - start
    assert out["halt_reason"] in HALT_REASONS, out
    assert out["question"] == demo_question and out["trajectory"]
    assert out["messages"][-1]["type"] == "ai" and out["messages"][-1]["content"]
    assert {"plan", "tool"} <= set(out["usage"])
    assert len(out["trajectory"]) <= RUN_CONTEXT["max_steps"]
    runs = client.runs.list(thread["thread_id"])
    assert [r["status"] for r in runs] == ["success"]
    print(f"\n[langgraph dev] group run {took:.1f} s, halt={out['halt_reason']}, answer={out['answer']!r}")

    # a second turn on the same thread, streamed: node updates and the model's events
    second = "Which island is the largest?"
    nodes, model_ends, final = [], 0, None
    for part in client.runs.stream(
        thread["thread_id"], "group",
        input={"messages": [{"type": "human", "content": second}]},
        context=RUN_CONTEXT,
        stream_mode=["updates", "events", "values"],
    ):
        if part.event == "updates":
            nodes.extend(part.data)
        elif part.event == "events" and part.data.get("event") in ("on_llm_end", "on_chat_model_end"):
            # a transcript prompt goes to /v1/completions (an LLM), a chat prompt to a chat model
            model_ends += 1
        elif part.event == "values":
            final = part.data
        elif part.event == "error":
            raise AssertionError(f"the run failed: {part.data}")
    assert nodes[0] == "start" and nodes[-1] == "finalize" and {"plan", "tool"} <= set(nodes)
    assert model_ends == sum(u["calls"] for u in final["usage"].values()) > 0
    assert final["question"] == second and final["halt_reason"] in HALT_REASONS
    # the thread kept the first turn
    assert [m["type"] for m in final["messages"]] == ["human", "ai", "human", "ai"]
    state = client.threads.get_state(thread["thread_id"])
    assert state["values"]["question"] == second and state["next"] == []
