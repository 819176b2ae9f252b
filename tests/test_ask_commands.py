"""``autoact ask`` / ``autoact chat`` wiring, on scripted models and the fake task."""

from __future__ import annotations

import argparse
import contextlib
import json
import re

import pytest
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from autoact.app.cli import build_parser, main
from autoact.graph.registry import graph_kind
from autoact.app import ask_commands as commands
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

    @contextlib.asynccontextmanager
    async def graph(name, settings):
        path = commands.checkpoint_path(settings)
        path.parent.mkdir(parents=True, exist_ok=True)
        async with AsyncSqliteSaver.from_conn_string(str(path)) as saver:
            yield graph_kind(name).build(built["models"], backend=fake_backend(), checkpointer=saver, name=name)

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


# ---- CodeAct and the baselines -------------------------------------------------------------------
def code_turn(thought: str, code: str) -> str:
    return f" {thought}\n```python\n{code}\n```"


CODE_TURNS = [
    " The answer is the Seine, I think.",  # no code: ask keeps the evaluation's rule
    code_turn("Read the page.", "page = retrieve('Eiffel Tower')\nprint(pages)"),
    code_turn("I misspelled it.", "page = retrieve('Eiffel Tower')\nprint(page)\nfinish('Seine')"),
]


def test_ask_codeact_shows_code_turns_readably(fake_cli, tmp_path, capsys):
    fake_cli["models"] = {"meta": scripted(*CODE_TURNS)}
    assert main(["ask", QUESTION, "--graph", "codeact", "--task", "fake", "--run", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert "Answer: Seine" in lines and "Trajectory (codeact graph," in out
    first = lines.index(" 1. Thought: The answer is the Seine, I think.")
    assert lines[first + 1] == "    Code: (no code block)" and lines[first + 2].startswith("    Observation: No code")
    # a block and a traceback, one line each, indented under their labels; the verdict beside it
    second = lines.index(" 2. Thought: Read the page.")
    assert lines[second:second + 6] == [
        " 2. Thought: Read the page.", "    Code:", "      page = retrieve('Eiffel Tower')", "      print(pages)",
        "    Observation (error):", "      Traceback (most recent call last):",
    ]
    assert "      NameError: name 'pages' is not defined" in lines
    third = lines.index(" 3. Thought: I misspelled it.")
    assert lines[third:third + 10] == [
        " 3. Thought: I misspelled it.", "    Code:", "      page = retrieve('Eiffel Tower')", "      print(page)",
        "      finish('Seine')", "    Observation:", "      The Eiffel Tower is a lattice tower in Paris.",
        "      Out: 'Answer recorded: Seine'", " 4. Action: Finish[Seine]", "halted: finish",
    ]
    assert lines[third + 10].startswith("usage meta: 3 calls, ")


def test_chat_codeact_takes_a_plain_answer(fake_cli, tmp_path, capsys):
    fake_cli["models"] = {"meta": scripted(" Hello! Ask me about places.", CODE_TURNS[2])}
    lines = iter(["Hi", QUESTION, "/trajectory", "/quit"])
    args = build_parser().parse_args(["chat", "--graph", "codeact", "--task", "fake", "--run", str(tmp_path / "run")])
    assert commands.cmd_chat(args, input_fn=lambda prompt: next(lines)) == 0
    out = capsys.readouterr().out
    assert "autoact> Hello! Ask me about places." in out and "autoact> Seine" in out
    assert "codeact graph" in out and "      finish('Seine')" in out  # /trajectory of the second turn


def test_ask_the_tool_free_baselines(fake_cli, tmp_path, capsys):
    run = str(tmp_path / "run")
    fake_cli["models"] = {"meta": scripted(" Find the city of the tower.\nSubgoal 2: Find its river.",
                                           " Paris is on the Seine.\nAnswer: Seine")}
    assert main(["ask", QUESTION, "--graph", "plan_solve", "--task", "fake", "--run", run]) == 0
    lines = capsys.readouterr().out.splitlines()
    start = lines.index(" 1. Plan:")
    assert lines[start:start + 6] == [
        " 1. Plan:", "      Subgoal 1: Find the city of the tower.", "      Subgoal 2: Find its river.",
        " 2. Thought: Paris is on the Seine.", "    Action: Finish[Seine]", "halted: finish",
    ]
    fake_cli["models"] = {"meta": scripted(" Paris is on the Seine.\nAnswer: Seine")}
    assert main(["ask", QUESTION, "--graph", "cot", "--task", "fake", "--run", run, "--max-tokens", "300"]) == 0
    assert "Answer: Seine" in capsys.readouterr().out


def test_ask_reflexion_runs_its_trial_under_the_checkpointer(fake_cli, tmp_path, capsys):
    fake_cli["models"] = {"meta": scripted(" Find the tower.\nAction: Retrieve[Eiffel Tower]",
                                           " It is in Paris, by the Seine.\nAction: Finish[Seine]")}
    assert main(["ask", QUESTION, "--graph", "reflexion", "--task", "fake", "--run", str(tmp_path / "run"),
                 "--json"]) == 0
    state = json.loads(capsys.readouterr().out)
    assert state["answer"] == "Seine" and len(state["trials"]) == 1  # no gold answer: one trial
    assert [s["action"] for s in state["trajectory"]] == ["Retrieve", "Finish"]


@pytest.mark.parametrize("graph, option, refusal", [
    ("codeact", {"no_reflect": True}, "--no-reflect: --graph codeact has no Reflect step"),
    ("reflexion", {"max_reflections": 2}, "--max-reflections: --graph reflexion has no Reflect step"),
    ("cot", {"tools": "Retrieve"}, "--tools: --graph cot has no tools"),
    ("plan_solve", {"max_steps": 3}, "--max-steps: --graph plan_solve has no tool steps"),
    ("codeact", {"mode": "one_pass"}, "--mode: --graph codeact has no planning mode"),
])
def test_an_option_the_graph_does_not_have_is_refused(graph, option, refusal):
    with pytest.raises(SystemExit, match=re.escape(refusal)):
        commands.context_from_args(_args(graph=graph, **option), None)


def test_each_graph_gets_its_own_context():
    assert commands.context_from_args(_args(graph="codeact", max_steps=3), None) == {"task": "demo", "max_steps": 3}
    # CodeActContext: in the terminal chat a plain answer ends the episode (ReactContext has no such field)
    assert commands.context_from_args(_args(graph="codeact"), None, chat=True) == {
        "task": "demo", "plain_answer_ends": True}
    assert commands.context_from_args(_args(graph="react"), None, chat=True) == {"task": "demo"}
    assert commands.context_from_args(_args(graph="reflexion", max_steps=4), None) == {"task": "demo", "max_steps": 4}


def test_a_wrong_option_fails_before_a_model_server_starts(monkeypatch, tmp_path):
    monkeypatch.setattr(commands, "model_endpoint", lambda *a, **k: pytest.fail("a model server was started"))
    with pytest.raises(SystemExit, match="--tools: --graph cot has no tools"):
        main(["ask", "Why?", "--graph", "cot", "--tools", "Retrieve", "--run", str(tmp_path / "run")])
