"""The graphs end to end: the real vLLM server with the embedded model, the real demo
task (corpus, tools, environment), and ``autoact ask`` on top."""

from __future__ import annotations

import functools
import json
import os
import time

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, HumanMessage

from autoact.app.cli import main
from autoact.graph import build_group_graph, build_react_graph
from autoact.prompts.records import training_records
from autoact.serving.vllm_server import VLLMServer
from graph_fakes import invoke, react_prompts

pytestmark = pytest.mark.slow

HALT_REASONS = {"finish", "max_reflections", "max_steps", "context", "parse_error"}


@pytest.fixture(scope="module")
def server(real_settings, embedded_model):
    server = VLLMServer(real_settings, embedded_model)  # no adapters: every role is the base
    server.start()
    try:
        yield server
    finally:
        pid = server.process.pid
        server.stop()
        with pytest.raises(ProcessLookupError):
            os.killpg(pid, 0)


@pytest.fixture(scope="module")
def demo():
    from autoact.tools import load_task, tool_library

    task = load_task("demo")
    library = tool_library(task)
    return task, [library[n] for n in task.default_tools]


@pytest.fixture(scope="module")
def demo_instance(demo):
    return demo[0].instances[0]


class PromptRecorder(BaseCallbackHandler):
    """Every prompt the graph sends to the server: a transcript (``/v1/completions``)
    as its text, a chat prompt as builder-style messages."""

    def __init__(self) -> None:
        self.prompts: list = []

    def on_llm_start(self, serialized, prompts, **kwargs) -> None:
        self.prompts.append(prompts[0])

    def on_chat_model_start(self, serialized, messages, **kwargs) -> None:
        roles = {"system": "system", "human": "user", "ai": "assistant"}
        sent = list(messages[0])
        if sent and sent[-1].type == "ai":  # the opened assistant turn (prefill) is not prompt
            sent = sent[:-1]
        self.prompts.append([{"role": roles[m.type], "content": m.content} for m in sent])


def assert_records_were_the_prompts(out: dict, demo, agents, recorder: PromptRecorder, prompt_format: str) -> int:
    """The round trip on a real episode: every training record cut from it has, as
    its prompt, a prompt the graph actually sent (byte for byte)."""
    task, tools = demo
    cut_records = functools.partial(training_records, prompt_format=prompt_format)
    records = cut_records(out["trajectory"], task.description, tools, out["question"], out["reflections"], agents=agents)
    cut = [r for agent in agents for r in records[agent]]
    for record in cut:
        sent = record["prompt"] if prompt_format == "transcript" else record["messages"][:-1]
        assert sent in recorder.prompts, record["id"]
    return len(cut)


def run_context(server, prompt_format: str, max_steps: int) -> dict:
    # a fine-tuned agent's prompt carries no worked examples: the records are cut
    # without them, so the base model plays the agents here without them too
    return {"base_url": server.base_url, "task": "demo", "max_steps": max_steps,
            "prompt_format": prompt_format, "worked_examples": "never"}


def check_episode(out: dict, roles: set[str]) -> None:
    steps = out["trajectory"]
    assert out["halt_reason"] in HALT_REASONS
    assert steps, "the model took no step"
    assert isinstance(out["messages"][-1], AIMessage) and out["messages"][-1].content
    for step in steps:
        assert set(step) == {"thought", "action", "argument", "observation"}
        if step["action"] not in ("Finish", ""):
            assert step["observation"]  # the tool (or the feedback) answered
    if out["answer"] is not None:
        assert out["reward"] is not None and 0.0 <= out["reward"] <= 1.0  # the demo question has gold
    assert set(out["usage"]) == roles
    for usage in out["usage"].values():
        assert usage["calls"] > 0 and usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0


def _report(name: str, out: dict, seconds: float) -> None:
    tokens = {r: (u["prompt_tokens"], u["completion_tokens"]) for r, u in out["usage"].items()}
    print(f"\n[{name}] {seconds:.1f} s, halt={out['halt_reason']}, steps={len(out['trajectory'])}, "
          f"answer={out['answer']!r}, reward={out['reward']}, tokens(prompt, completion)={tokens}")


@pytest.mark.parametrize("prompt_format", ["transcript", "chat"])
def test_group_graph_runs_to_the_end(server, demo, demo_instance, prompt_format):
    graph, recorder = build_group_graph(), PromptRecorder()
    payload = {"messages": [HumanMessage(content=demo_instance.question)], "instance": demo_instance.to_dict()}
    start = time.perf_counter()
    out = invoke(graph, payload, {"callbacks": [recorder]},
                       context=run_context(server, prompt_format, 6))
    _report(f"group/{prompt_format}", out, time.perf_counter() - start)
    called = {r for r in ("plan", "tool", "reflect") if r in out["usage"]}
    assert {"plan", "tool"} <= called
    check_episode(out, called)
    assert sum(u["calls"] for u in out["usage"].values()) == len(recorder.prompts)
    valid = [s for s in out["trajectory"] if s["action"] in ("Retrieve", "Lookup", "Search", "Finish")]
    checked = assert_records_were_the_prompts(out, demo, ("plan", "reflect"), recorder, prompt_format)
    assert checked == len(valid) + len(out["reflections"])
    assert_records_were_the_prompts(out, demo, ("tool",), recorder, prompt_format)


@pytest.mark.parametrize("prompt_format", ["transcript", "chat"])
def test_react_graph_runs_to_the_end(server, demo, demo_instance, prompt_format):
    graph, recorder = build_react_graph(), PromptRecorder()
    payload = {"messages": [HumanMessage(content=demo_instance.question)], "instance": demo_instance.to_dict()}
    start = time.perf_counter()
    out = invoke(graph, payload, {"callbacks": [recorder]},
                       context=run_context(server, prompt_format, 6))
    _report(f"react/{prompt_format}", out, time.perf_counter() - start)
    check_episode(out, {"meta"})
    assert out["usage"]["meta"]["calls"] == len(recorder.prompts)
    valid = [s for s in out["trajectory"] if s["action"] in ("Retrieve", "Lookup", "Search", "Finish") and s["argument"]]
    task, tools = demo
    built = react_prompts(out, task.description, tools, prompt_format)
    assert all(prompt in recorder.prompts for prompt in built)
    assert len(built) == len(valid) + len(out["reflections"])


def test_codeact_graph_runs_to_the_end(server, demo_instance):
    """CodeAct against the real server: the model's blocks run in the real sandbox
    with the demo's tools bridged in, and the episode ends with a reason."""
    from autoact.graph import build_codeact_graph

    graph, recorder = build_codeact_graph(), PromptRecorder()
    payload = {"messages": [HumanMessage(content=demo_instance.question)], "instance": demo_instance.to_dict()}
    start = time.perf_counter()
    out = invoke(graph, payload, {"callbacks": [recorder]},
                       context={"base_url": server.base_url, "task": "demo", "max_steps": 3, "max_tokens": 160})
    _report("codeact", out, time.perf_counter() - start)
    assert out["halt_reason"] in HALT_REASONS
    assert out["usage"]["meta"]["calls"] == len(recorder.prompts) >= 1
    assert "```python" in recorder.prompts[0] and demo_instance.question in recorder.prompts[0]
    code_turns = [s for s in out["trajectory"] if s["action"] == "Code"]
    assert code_turns and all(s["observation"] for s in code_turns)
    for turn, later_prompt in zip(code_turns, recorder.prompts[1:]):
        assert turn["observation"][:40] in later_prompt  # each block's result reached the next turn


def test_one_pass_mode_runs_to_the_end(server, demo_instance):
    out = invoke(build_group_graph(),
        {"messages": [HumanMessage(content=demo_instance.question)]},
        context={"base_url": server.base_url, "task": "demo", "mode": "one_pass", "max_steps": 5},
    )
    assert "plan" in out["usage"] and out["halt_reason"] in HALT_REASONS
    assert out["reward"] is None  # a chat question: no gold


def test_autoact_ask_answers_and_resumes_a_thread(server, tmp_path, capsys, demo_instance):
    run = str(tmp_path / "run")
    base = ["--base-url", server.base_url, "--run", run, "--thread", "it1", "--max-steps", "4"]
    assert main(["ask", demo_instance.question, *base]) == 0
    out = capsys.readouterr().out
    assert "Answer: " in out and " 1. Thought:" in out and "usage plan:" in out
    assert main(["ask", "Which island is the largest?", "--graph", "group", "--json", *base]) == 0
    state = json.loads(capsys.readouterr().out)
    assert [m["type"] for m in state["messages"]] == ["human", "ai", "human", "ai"]
    assert state["question"] == "Which island is the largest?" and state["halt_reason"] in HALT_REASONS
