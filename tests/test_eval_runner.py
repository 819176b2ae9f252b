"""The benchmark runner on a chat model that answers by question (no server):
records, resuming after failures and after a torn write, question selection,
method settings and the adapter checks."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from autoact.eval.methods import METHODS, UnknownMethod, needed_adapters, resolve_methods
from autoact.eval.report import build_report
from autoact.eval.runner import (
    AdapterNotServed,
    EvalSetupError,
    adapter_paths,
    check_adapters,
    eval_endpoint,
    method_context,
    plan_eval,
    run_methods,
    write_summary,
)
from autoact.settings import Settings
from eval_fakes import KeyedChatModel

ROWS = [
    {"id": "q1", "question": "What is the capital of France?", "answer": "Paris", "level": "easy"},
    {"id": "q2", "question": "Who wrote Hamlet?", "answer": "William Shakespeare", "level": "easy"},
    {"id": "q3", "question": "Is the sky green?", "answer": "no", "level": "hard"},
    {"id": "q4", "question": "How many legs does a spider have?", "answer": "8", "level": "hard"},
]
COT = {
    "What is the capital of France?": " Paris is the capital.\nAnswer: Paris",
    "Who wrote Hamlet?": " It was Shakespeare.\nAnswer: Shakespeare",
    "Is the sky green?": " The sky is blue.\nAnswer: yes",
    "How many legs does a spider have?": " Spiders have eight legs.\nAnswer: 8",
}


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "questions.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    return path


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(run_dir=tmp_path / "run", home=tmp_path / "home")


def _run(settings, data, out, model, methods=("cot",), concurrency=3, **kw):
    plan = plan_eval(settings, "custom", list(methods), out, data=[data], **kw)
    runs = asyncio.run(run_methods(plan, "http://unused/v1", concurrency, models={"meta": model}))
    return plan, runs


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_records_hold_everything_per_question(settings, data, tmp_path):
    model = KeyedChatModel(replies=COT)
    _, runs = _run(settings, data, tmp_path / "out", model)
    records = {r["id"]: r for r in _lines(tmp_path / "out" / "cot.jsonl")}
    assert set(records) == {"q1", "q2", "q3", "q4"}
    q2 = records["q2"]
    assert q2["prediction"] == "Shakespeare" and q2["gold"] == "William Shakespeare" and q2["group"] == "easy"
    assert q2["scores"]["f1"] == pytest.approx(2 / 3) and q2["scores"]["em"] == 0.0
    assert q2["calls"] == 1 and q2["tokens"]["prompt"] > 0 and q2["tokens"]["completion"] > 0
    assert q2["latency_s"] >= 0 and q2["halt_reason"] == "finish"
    assert q2["trajectory"] == [{"thought": "It was Shakespeare.", "action": "Finish", "argument": "Shakespeare",
                                 "observation": ""}]
    assert runs["cot"]["done"] == 4 and runs["cot"]["failed"] == 0
    assert runs["cot"]["completion_tokens"] == sum(r["tokens"]["completion"] for r in records.values())
    manifest = json.loads((tmp_path / "out" / "eval.json").read_text())
    assert manifest["benchmark"] == "custom" and manifest["methods"] == ["cot"] and manifest["questions"] == 4
    summary = write_summary(tmp_path / "out", "custom")["methods"]["cot"]
    assert summary["groups"]["easy"]["f1"] == pytest.approx(100 * (1 + 2 / 3) / 2)
    assert summary["groups"]["hard"]["em"] == pytest.approx(50.0)


def test_every_model_call_carries_its_question_id(settings, data, tmp_path):
    # benchmarks/eval_throughput.py replays each question's calls as a chain by this id
    from langchain_core.callbacks import BaseCallbackHandler

    class Seen(BaseCallbackHandler):
        def __init__(self):
            self.ids = []

        def on_chat_model_start(self, serialized, messages, *, metadata=None, **kwargs):
            self.ids.append((metadata or {}).get("question_id"))

    seen = Seen()
    plan = plan_eval(settings, "custom", ["cot"], tmp_path / "out", data=[data])
    asyncio.run(run_methods(plan, "http://unused/v1", 2, callbacks=[seen], models={"meta": KeyedChatModel(replies=COT)}))
    assert sorted(seen.ids) == ["q1", "q2", "q3", "q4"]


def test_structured_outputs_can_be_turned_off_for_a_run(settings, data, tmp_path):
    # benchmarks/eval_throughput.py --no-structured measures what the guides cost the server
    plan = plan_eval(settings, "custom", ["react"], tmp_path / "out", data=[data], structured=False)
    react = plan.methods[0]
    assert method_context(react, plan.task, plan.tools, "http://x/v1", plan.options)["structured"] is False
    assert "structured" not in method_context(react, plan.task, plan.tools, "http://x/v1", {})
    assert plan.manifest["options"] == {"structured": False}


def test_failed_questions_are_logged_and_retried_on_the_next_run(settings, data, tmp_path):
    out = tmp_path / "out"
    broken = KeyedChatModel(replies=COT, failing={"Who wrote Hamlet?"})
    _, runs = _run(settings, data, out, broken)
    assert runs["cot"]["failed"] == 1
    assert {r["id"] for r in _lines(out / "cot.jsonl")} == {"q1", "q3", "q4"}
    errors = _lines(out / "cot.errors.jsonl")
    assert [e["id"] for e in errors] == ["q2"] and "server error" in errors[0]["error"]

    healthy = KeyedChatModel(replies=COT)
    _, runs = _run(settings, data, out, healthy)
    assert dict(healthy.asked) == {"Who wrote Hamlet?": 1}  # only the missing question ran again
    assert runs["cot"]["skipped_done"] == 3 and runs["cot"]["done"] == 1
    ids = [r["id"] for r in _lines(out / "cot.jsonl")]
    assert sorted(ids) == ["q1", "q2", "q3", "q4"]  # no duplicate, nothing lost


def test_a_torn_last_line_is_dropped_and_its_question_redone(settings, data, tmp_path):
    out = tmp_path / "out"
    _run(settings, data, out, KeyedChatModel(replies=COT))
    path = out / "cot.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    torn_id = json.loads(lines[-1])["id"]
    path.write_text("".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])  # killed mid-write
    again = KeyedChatModel(replies=COT)
    _run(settings, data, out, again)
    assert sum(again.asked.values()) == 1
    records = _lines(path)
    assert len(records) == 4 and {r["id"] for r in records} == {"q1", "q2", "q3", "q4"}
    assert any(r["id"] == torn_id for r in records)


def test_tool_methods_and_reflexion_through_the_runner(settings, data, tmp_path):
    replies = {q: f"Thought: {a.split(chr(10))[0].strip()}\nAction: Finish[{a.split('Answer: ')[1]}]"
               for q, a in COT.items()}
    model = KeyedChatModel(replies=replies)
    _, runs = _run(settings, data, tmp_path / "out", model, methods=("react", "reflexion"), trials=2)
    react = {r["id"]: r for r in _lines(tmp_path / "out" / "react.jsonl")}
    reflexion = {r["id"]: r for r in _lines(tmp_path / "out" / "reflexion.jsonl")}
    assert react["q1"]["prediction"] == "Paris" and react["q1"]["calls"] == 1  # reflect is off for react
    assert runs["react"]["context"]["tools"] == ["Calculator"] and runs["react"]["context"]["reflect"] is False
    # Reflexion: a right first trial ends at once; a wrong one gets a reflection and a second trial
    assert reflexion["q1"]["calls"] == 1 and len(reflexion["q1"]["trials"]) == 1
    q3 = reflexion["q3"]
    assert [t["answer"] for t in q3["trials"]] == ["yes", "yes"] and q3["calls"] == 3
    assert q3["notes"] == ["The sky is blue."]
    assert runs["reflexion"]["context"]["max_trials"] == 2


def test_reflexion_records_keep_each_trials_actions_for_the_report(settings, data, tmp_path):
    replies = {q: "Thought: I will look it up.\nAction: Wikipedia[it]" for q in COT}  # an action not offered
    replies["What is the capital of France?"] = "Thought: I know it.\nAction: Finish[Paris]"
    _run(settings, data, tmp_path / "out", KeyedChatModel(replies=replies), methods=("reflexion",), trials=2)
    records = {r["id"]: r for r in _lines(tmp_path / "out" / "reflexion.jsonl")}
    assert records["q1"]["trials"][0]["actions"] == [{"action": "Finish", "argument": "Paris"}]
    # two invalid steps in a row end each of the two trials
    assert [t["actions"] for t in records["q2"]["trials"]] == [[{"action": "Wikipedia", "argument": "it"}] * 2] * 2
    sd = build_report([tmp_path / "out"])["self_debugging"]["reflexion"]
    assert (sd["turns"], sd["error_turns"], sd["episodes_with_error"], sd["recovered"]) == (13, 12, 3, 0)


def test_question_selection(settings, data, tmp_path):
    plan = plan_eval(settings, "custom", ["cot"], tmp_path / "a", data=[data], limit=1)
    assert [i.id for i in plan.instances] == ["q1", "q3"]  # the first question of each level
    demo = plan_eval(settings, "demo", ["cot"], tmp_path / "b")
    assert demo.instances and all(i.meta["split"] == "test" for i in demo.instances)
    with pytest.raises(EvalSetupError, match="split 'nope'"):
        plan_eval(settings, "demo", ["cot"], tmp_path / "c", split="nope")
    with pytest.raises(EvalSetupError, match="needs --data"):
        plan_eval(settings, "custom", ["cot"], tmp_path / "d")
    with pytest.raises(EvalSetupError, match="unknown benchmark"):
        plan_eval(settings, "mmlu", ["cot"], tmp_path / "e")


def test_tools_come_from_the_run_then_the_task(settings, data, tmp_path):
    plan = plan_eval(settings, "custom", ["cot"], tmp_path / "a", data=[data])
    assert plan.tools == ["Calculator"]
    settings.run_dir.mkdir(parents=True)
    (settings.run_dir / "tools.json").write_text(json.dumps({"selected": ["Calculator", "Python"]}))
    assert plan_eval(settings, "custom", ["cot"], tmp_path / "b", data=[data]).tools == ["Calculator", "Python"]
    with pytest.raises(EvalSetupError, match="Teleport"):
        plan_eval(settings, "custom", ["cot"], tmp_path / "c", data=[data], tools=["Teleport"])


def test_a_directory_holds_one_setting(settings, data, tmp_path):
    out = tmp_path / "out"
    _run(settings, data, out, KeyedChatModel(replies=COT))
    plan_eval(settings, "custom", ["cot", "react"], out, data=[data])  # more methods: fine
    with pytest.raises(EvalSetupError, match="tools"):
        plan_eval(settings, "custom", ["cot"], out, data=[data], tools=["Python"])
    with pytest.raises(EvalSetupError, match="max_steps"):
        plan_eval(settings, "custom", ["cot"], out, data=[data], max_steps=3)


def test_methods_and_their_settings(settings, data, tmp_path):
    assert [m.name for m in resolve_methods(["all"])] == list(METHODS)
    with pytest.raises(UnknownMethod, match="toolformer"):
        resolve_methods(["toolformer"])
    autoact, one_agent, no_reflect = METHODS["autoact"], METHODS["one-agent"], METHODS["no-reflect"]
    assert autoact.adapters == ("plan", "tool", "reflect") and one_agent.adapters == ("one-agent",)
    assert METHODS["react"].adapters == () and METHODS["cot"].adapters == ()
    assert needed_adapters([autoact, one_agent, no_reflect]) == ["plan", "tool", "reflect", "one-agent"]
    plan = plan_eval(settings, "custom", ["autoact"], tmp_path / "a", data=[data], max_steps=5)
    ctx = method_context(autoact, plan.task, plan.tools, "http://x/v1", plan.options)
    assert ctx["plan_model"] == "plan" and ctx["tool_model"] == "tool" and ctx["reflect_model"] == "reflect"
    assert ctx["max_steps"] == 5 and ctx["mode"] == "iterative"
    ctx = method_context(METHODS["one-pass"], plan.task, plan.tools, "http://x/v1", {})
    assert ctx["mode"] == "one_pass"
    ctx = method_context(no_reflect, plan.task, plan.tools, "http://x/v1", {})
    assert ctx["reflect"] is False and "reflect_model" not in ctx
    # without fine-tuning: the base model named in every role, so served adapters cannot slip in
    base = METHODS["no-finetune"]
    assert base.adapters == () and needed_adapters([base]) == []
    ctx = method_context(base, plan.task, plan.tools, "http://x/v1", {})
    assert ctx["plan_model"] == ctx["tool_model"] == ctx["reflect_model"] == "base"
    ctx = method_context(METHODS["cot"], plan.task, plan.tools, "http://x/v1", {"trials": 3})
    assert "tools" not in ctx and "max_trials" not in ctx


def test_missing_adapters_are_named_never_replaced_by_the_base(settings, monkeypatch):
    methods = [METHODS["react"], METHODS["one-agent"]]
    with pytest.raises(AdapterNotServed, match="'one-agent'.*does not serve"):
        check_adapters(["base", "plan", "tool", "reflect"], methods, "http://x/v1", settings.run_dir)
    check_adapters(["base", "one-agent"], methods, "http://x/v1", settings.run_dir)  # all there
    with pytest.raises(AdapterNotServed, match="'one-agent'.*finetune --one-agent"):
        adapter_paths(settings.run_dir, ["one-agent"], methods)
    folder = settings.run_dir / "adapters" / "one-agent"
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text("{}")
    assert adapter_paths(settings.run_dir, ["one-agent"], methods) == {"one-agent": folder}

    # an endpoint that answers but lacks the adapter: refused before anything runs
    import autoact.serving.vllm_server as vllm_server

    monkeypatch.setattr(vllm_server, "list_models", lambda url, timeout=5.0: ["base", "plan"])
    with pytest.raises(AdapterNotServed, match="one-agent"):
        with eval_endpoint(settings, methods, base_url="http://127.0.0.1:9/v1"):
            pass
    with eval_endpoint(settings, [METHODS["react"]], base_url="http://127.0.0.1:9/v1/") as url:
        assert url == "http://127.0.0.1:9/v1"


def test_a_recorded_server_without_the_adapters_is_not_used(settings, monkeypatch, capsys):
    import autoact.serving.vllm_server as vllm_server
    from autoact.serving.client import write_endpoint

    write_endpoint(settings, {"base_url": "http://127.0.0.1:9/v1"})
    monkeypatch.setattr(vllm_server, "list_models", lambda url, timeout=5.0: ["base"])
    with eval_endpoint(settings, [METHODS["cot"]]) as url:  # needs no adapter: the recorded one will do
        assert url == "http://127.0.0.1:9/v1"
    # autoact needs plan/tool/reflect: the recorded server is passed over, and the run has none to serve
    with pytest.raises(AdapterNotServed, match="holds none"):
        with eval_endpoint(settings, [METHODS["autoact"]]):
            pass
    err = capsys.readouterr().err
    assert "not using the recorded server at http://127.0.0.1:9/v1" in err and "needs the adapter 'plan'" in err


def test_no_server_and_no_serve_is_a_clear_error(settings):
    from autoact.serving.client import ModelServerUnreachable

    with pytest.raises(ModelServerUnreachable, match="no model server answers"):
        with eval_endpoint(settings, [METHODS["react"]], serve=False):
            pass


def test_sigterm_becomes_system_exit_while_our_server_runs():
    import os
    import signal
    import time

    from autoact.serving.vllm_server import stop_on_sigterm

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit) as info:
        with stop_on_sigterm():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises at the next bytecode; never sleeps this long
    assert info.value.code == 128 + signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) == before
