"""``autoact ask`` / ``autoact chat`` wiring, on scripted models and the fake task."""

from __future__ import annotations

import argparse
import contextlib

import pytest
from langgraph.checkpoint.sqlite import SqliteSaver

from autoact.cli import build_parser, main
from autoact.graph import build_group_graph, build_react_graph
from autoact.graph import commands
from graph_fakes import QUESTION, fake_backend, scripted

RIGHT = "Thought: Supported.\nAction: Reflect[right]"


def group_models(answers):
    return {
        "plan": scripted(*["Thought: I know it.\nAction: Finish"] * len(answers)),
        "tool": scripted(*answers),
        "reflect": scripted(*[RIGHT] * len(answers)),
    }


@pytest.fixture
def fake_cli(monkeypatch, tmp_path):
    """The commands with a fake endpoint and graphs on scripted models (SQLite kept)."""
    built = {}

    @contextlib.contextmanager
    def endpoint(settings, base_url, serve):
        yield "http://127.0.0.1:9/v1"

    @contextlib.contextmanager
    def graph(name, settings):
        path = commands.checkpoint_path(settings)
        path.parent.mkdir(parents=True, exist_ok=True)
        with SqliteSaver.from_conn_string(str(path)) as saver:
            if name == "group":
                g = build_group_graph(built["models"], backend=fake_backend(), checkpointer=saver)
            else:
                g = build_react_graph(built["models"], backend=fake_backend(), checkpointer=saver)
            yield g

    monkeypatch.setattr(commands, "model_endpoint", endpoint)
    monkeypatch.setattr(commands, "compiled_graph", graph)
    return built


def test_commands_are_registered():
    parser = build_parser()
    args = parser.parse_args(["ask", "Why?", "--graph", "react", "--thread", "t1", "--max-steps", "4"])
    assert args.func is commands.cmd_ask and args.graph == "react" and args.max_steps == 4
    assert parser.parse_args(["chat"]).func is commands.cmd_chat


def _args(**overrides):
    parser = argparse.ArgumentParser()
    commands.add_graph_options(parser)
    return parser.parse_args([]) if not overrides else argparse.Namespace(**{**vars(parser.parse_args([])), **overrides})


def test_context_from_options_is_validated():
    ctx = commands.context_from_args(_args(tools="Retrieve, Lookup", mode="one_pass", no_reflect=True), "http://x/v1")
    assert ctx == {"base_url": "http://x/v1", "task": "demo", "tools": ["Retrieve", "Lookup"], "reflect": False,
                   "mode": "one_pass"}
    with pytest.raises(SystemExit, match="--mode"):
        commands.context_from_args(_args(graph="react", mode="one_pass"), None)
    with pytest.raises(Exception, match="max_steps"):
        commands.context_from_args(_args(max_steps=0), None)


def test_ask_prints_answer_and_trajectory_and_resumes_the_thread(fake_cli, tmp_path, capsys):
    fake_cli["models"] = group_models(["Seine", "Paris"])
    run = str(tmp_path / "run")
    assert main(["ask", QUESTION, "--task", "fake", "--run", run, "--thread", "th1"]) == 0
    out = capsys.readouterr().out
    assert "Answer: Seine" in out
    assert " 1. Thought: I know it." in out and "Action: Finish[Seine]" in out and "Action: Reflect[right]" in out
    assert "halted: finish" in out and "usage plan: 1 calls" in out and "--thread th1" in out
    # the same thread goes on: the checkpoint holds both turns
    assert main(["ask", "And the city?", "--task", "fake", "--run", run, "--thread", "th1", "--json"]) == 0
    import json

    state = json.loads(capsys.readouterr().out)
    assert [m["type"] for m in state["messages"]] == ["human", "ai", "human", "ai"]
    assert state["answer"] == "Paris" and state["question"] == "And the city?"
    assert (tmp_path / "run" / "graph" / "checkpoints.sqlite").is_file()


def test_chat_loop(fake_cli, tmp_path, capsys):
    fake_cli["models"] = group_models(["Seine", "Paris"])
    lines = iter([QUESTION, "/trajectory", "", "/help", "Which city?", "/quit"])
    args = build_parser().parse_args(["chat", "--task", "fake", "--run", str(tmp_path / "run"), "--thread", "c1"])
    assert commands.cmd_chat(args, input_fn=lambda prompt: next(lines)) == 0
    out = capsys.readouterr().out
    assert "autoact> Seine" in out and "autoact> Paris" in out
    assert "Action: Finish[Seine]" in out  # /trajectory
    assert commands.CHAT_HELP in out and "thread: c1" in out


def test_ask_without_a_server_and_no_serve_fails_clearly(tmp_path, monkeypatch, capsys):
    from autoact.serving.vllm_server import free_port

    monkeypatch.setenv("AUTOACT_HOME", str(tmp_path / "home"))
    url = f"http://127.0.0.1:{free_port()}/v1"
    code = main(["ask", "Why?", "--run", str(tmp_path / "run"), "--base-url", url])
    assert code == 1 and url in capsys.readouterr().err
    code = main(["ask", "Why?", "--run", str(tmp_path / "run"), "--no-serve"])
    assert code == 1 and "no model server" in capsys.readouterr().err


def test_format_trajectory_lists_steps_reflections_and_usage():
    state = {
        "trajectory": [
            {"thought": "a", "action": "Retrieve", "argument": "X", "observation": "X is y."},
            {"thought": "b", "action": "Finish", "argument": "y", "observation": ""},
        ],
        "reflections": [{"thought": "ok", "verdict": "right"}],
        "halt_reason": "finish",
        "score": {"reward": 1.0, "f1": 1.0},
        "usage": {"meta": {"calls": 3, "prompt_tokens": 900, "completion_tokens": 40, "prompt_chars": 3600}},
    }
    assert commands.format_trajectory(state).splitlines() == [
        " 1. Thought: a", "    Action: Retrieve[X]", "    Observation: X is y.",
        " 2. Thought: b", "    Action: Finish[y]", "    Reflection: ok", "    Action: Reflect[right]",
        "halted: finish", "score: reward=1, f1=1",
        "usage meta: 3 calls, 900 prompt + 40 completion tokens",
    ]
