"""CodeAct learned from scratch: synthesis with code actions, the ``codeact`` agent's
training records, and the ``codeact-ft`` method that evaluates its adapter. A scripted
model writes the turns; the blocks run in the real sandbox on the demo task."""

from __future__ import annotations

import asyncio
import json

import pytest
from langchain_core.messages import HumanMessage

from autoact.eval.methods import method_named
from autoact.finetune.records import load_agent_records
from autoact.graph import build_codeact_graph
from autoact.prompts import codeact as prompt
from autoact.settings import Settings
from autoact.synth.differentiate import differentiate
from autoact.synth.synthesis import SynthesisConfig, run_synthesis
from autoact.tools import load_task

from graph_fakes import FakeTask, GOLD, QUESTION, fake_backend, invoke, scripted


def block(thought: str, code: str) -> str:
    return f" {thought}\n```python\n{code}\n```"


def test_codeact_records_continue_exactly_the_prompts_the_graph_sends():
    turns = [
        block("Read the page.", "page = retrieve('Eiffel Tower')\nprint(pages)"),
        block("I misspelled the name.", "print(page)"),
        block("The tower is in Paris, by the Seine.", "finish('Seine')"),
    ]
    meta = scripted(*turns)
    graph = build_codeact_graph({"meta": meta}, backend=fake_backend())
    context = {"task": "fake", "max_steps": 6, "worked_examples": "never", "sandbox_cpu_s": 2}
    state = invoke(graph, {"messages": [HumanMessage(QUESTION)], "instance": GOLD}, context=context)
    assert state["reward"] == 1.0 and state["trajectory"][0]["status"] == "error"

    records = prompt.training_records(state["trajectory"], FakeTask.description, ["Retrieve", "Lookup"], QUESTION,
                                      record_id="fake-0")
    # the prompt of every record is the text the graph sent at that turn; the target is the whole turn,
    # the erroring one included (reading the traceback and fixing it is what is learned)
    assert [r["prompt"] for r in records] == [call[0].content for call in meta.calls]
    assert [r["completion"] for r in records] == turns
    assert [r["id"] for r in records] == ["fake-0/codeact/0", "fake-0/codeact/1", "fake-0/codeact/2"]
    assert {r["agent"] for r in records} == {"codeact"} and all(r["format"] == "transcript" for r in records)
    assert all(prompt.parse_code_turn(r["completion"]).ok for r in records)


def test_a_turn_without_code_is_history_but_no_target():
    steps = [
        {"thought": "I know it.", "action": prompt.CODE, "argument": "", "observation": "No code block."},
        {"thought": "Write it.", "action": prompt.CODE, "argument": "finish('Seine')", "observation": "",
         "status": "ok"},
        {"thought": "", "action": "Finish", "argument": "Seine", "observation": ""},
    ]
    records = prompt.training_records(steps, "A task.", ["Retrieve"], "Which river?")
    assert len(records) == 1
    assert "Thought: I know it.\nObservation: No code block.\nThought:" in records[0]["prompt"]
    assert records[0]["completion"] == block("Write it.", "finish('Seine')")


@pytest.fixture(scope="module")
def demo():
    return load_task("demo")


def test_code_synthesis_keeps_solved_episodes_and_trains_one_codeact_agent(demo, tmp_path):
    solved, unsolved = demo.split("train")[:2]
    entity = solved.meta["supporting_titles"][0]
    meta = scripted(
        block(f"I need the paragraph about {entity}.", f"page = retrieve({entity!r})\nprint(page[:200])"),
        block("The paragraph gives the answer.", f"finish({solved.answer!r})"),
        block("I guess.", "finish('Nobody Atall')"),
    )
    graph = build_codeact_graph({"meta": meta})
    settings = Settings(run_dir=tmp_path)
    config = SynthesisConfig(task="demo", instances="task", limit=2, concurrency=1, max_steps=4,
                             tools=["Retrieve", "Lookup"], action_space="code")
    (tmp_path / "tools.json").write_text(json.dumps({"selected": ["Retrieve", "Lookup"]}))
    reports = asyncio.run(run_synthesis(settings, config, "http://127.0.0.1:9/v1",
                                        ("trajectories", "filter", "differentiate"), graph=graph))
    assert reports["trajectories"]["synthesized"] == 2
    assert reports["filter"]["kept"] == 1
    assert reports["differentiate"] == {"codeact": 2}
    assert not (tmp_path / "data" / "plan.jsonl").exists()

    records, files = load_agent_records(tmp_path, "codeact")  # what `autoact finetune --agents codeact` trains
    assert [f.name for f in files] == ["codeact.jsonl"] and len(records) == 2
    assert records[1]["completion"] == block("The paragraph gives the answer.", f"finish({solved.answer!r})")
    assert records[1]["prompt"].startswith(prompt.codeact_prompt(demo.description, ["Retrieve", "Lookup"],
                                                                  solved.question))
    assert "Observation: " in records[1]["prompt"]  # the retrieved paragraph, as the graph showed it
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["synthesis"]["action_space"] == "code" and "data/codeact.jsonl" in manifest["files"]
    assert unsolved.id not in {json.loads(line)["instance_id"] for line in (tmp_path / "kept.jsonl").open()}


def test_code_actions_refuse_what_they_do_not_do():
    with pytest.raises(ValueError, match="text actions only"):
        SynthesisConfig(action_space="code", rationalize=True)
    with pytest.raises(ValueError, match="transcripts"):
        SynthesisConfig(action_space="code", prompt_format="chat")
    with pytest.raises(ValueError, match="unknown action space 'json'"):
        SynthesisConfig(action_space="json")
    with pytest.raises(ValueError, match="unknown action space"):
        differentiate([], "A task.", [], "/nonexistent", action_space="json")


def test_codeact_ft_evaluates_the_codeact_adapter():
    method = method_named("codeact-ft")
    assert method.graph == "codeact" and method.adapters == ("codeact",)
    assert method_named("codeact").adapters == ()


def test_learn_with_code_actions_trains_one_codeact_agent_and_evaluates_it():
    from autoact.app.cli import build_parser, pipeline_config
    from autoact.app.pipeline import PipelineConfig, _synthesis_config

    args = build_parser().parse_args(["learn", "--task", "demo", "--action-space", "code", "--task-questions"])
    config = pipeline_config(args, Settings(), "demo")
    assert config.agents == ("codeact",) and config.methods == ("react", "codeact", "codeact-ft")
    assert _synthesis_config(config, Settings()).action_space == "code"
    text = pipeline_config(build_parser().parse_args(["learn", "--task", "demo"]), Settings(), "demo")
    assert text.agents == ("plan", "tool", "reflect") and text.methods == ("react", "no-finetune", "autoact")
    with pytest.raises(ValueError, match="text actions only"):
        PipelineConfig(action_space="code", learn=Settings().learn.model_copy(update={"rounds": 2}))


# ---- worked examples in the task's shape --------------------------------------------------------
def test_the_tasks_seed_episodes_become_code_examples(demo):
    from autoact.tools.worked_examples import task_examples

    offered = ["Retrieve", "Lookup"]
    episodes = task_examples(demo, offered)
    examples = prompt.task_examples(episodes, offered)
    assert [e["shape"] for e in examples] == ["multi-hop", "one-hop"]
    assert [e["name"] for e in examples] == [e["name"] for e in episodes]  # both from seeds
    for text, code in zip(episodes, examples):
        assert code["question"] == text["question"]
        calls = [t["code"] for t in code["turns"]]
        wanted = [f"print(retrieve({json.dumps(s['argument'])}))" for s in text["steps"][:-1]]
        assert calls == [*wanted, f"finish({json.dumps(text['steps'][-1]['argument'])})"]
        assert [t.get("observation") for t in code["turns"][:-1]] == [s["observation"] for s in text["steps"][:-1]]
    assert "observation" not in examples[0]["turns"][-1]


def test_episodes_that_code_cannot_show_fall_back_to_the_generic_examples():
    calculator = {"name": "seed:s1", "shape": "one-hop", "question": "What is 2 + 3?", "steps": [
        {"thought": "Add.", "action": "Calculator", "argument": "2 + 3", "observation": "5"},
        {"thought": "It is 5.", "action": "Finish", "argument": "5", "observation": ""}]}
    assert prompt.code_episode(calculator, ["Retrieve", "Calculator"]) is None
    generic = prompt.default_examples(["Retrieve"])
    assert prompt.task_examples([calculator], ["Retrieve"]) == generic
    # generic text examples (not from seeds) are not converted: the code ones are written for code
    assert prompt.task_examples([{**calculator, "name": "two-pages"}], ["Retrieve"]) == generic


def test_the_base_model_sees_the_tasks_examples_as_code(demo):
    from autoact.tools.worked_examples import task_examples

    instance = demo.split("test")[0]
    meta = scripted(block("I guess.", "finish('x')"))
    graph = build_codeact_graph({"meta": meta})
    invoke(graph, {"messages": [HumanMessage(instance.question)], "instance": instance.to_dict()},
                 context={"task": "demo", "tools": ["Retrieve", "Lookup"], "max_steps": 2})
    sent = meta.calls[0][0].content
    for example in prompt.task_examples(task_examples(demo, ["Retrieve", "Lookup"]), ["Retrieve", "Lookup"]):
        assert f"Question: {example['question']}\n{prompt.render_turns(example['turns'])}" in sent
    assert "Eiffel Tower" not in sent  # the generic examples are not shown beside them
    generic = {"task": "demo", "tools": ["Retrieve", "Lookup"], "max_steps": 2, "example_source": "generic"}
    meta = scripted(block("I guess.", "finish('x')"))
    invoke(build_codeact_graph({"meta": meta}),
        {"messages": [HumanMessage(instance.question)], "instance": instance.to_dict()}, context=generic)
    assert prompt.default_examples(["Retrieve", "Lookup"])[0]["question"] in meta.calls[0][0].content
