"""The group-planning graph with scripted plan / tool / reflect models on a fake task."""

from __future__ import annotations

import asyncio

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.memory import InMemorySaver
from pydantic import ValidationError

from autoact.graph import build_group_graph
from autoact.graph.environment import TaskSetupError
from autoact.prompts import builders
from autoact.prompts.kinds import KINDS
from autoact.prompts.records import training_records
from graph_fakes import CONTEXT, FakeTask, GOLD, QUESTION, TOOLS, fake_backend, invoke, scripted, stream


def chat_records(*args, **kwargs):
    return training_records(*args, prompt_format="chat", **kwargs)


RIGHT = "Thought: The observation says so.\nAction: Reflect[right]"
WRONG = "Thought: Not supported.\nAction: Reflect[wrong]"


def models(plan, tool, reflect=()):
    return {"plan": scripted(*plan), "tool": scripted(*tool), "reflect": scripted(*reflect)}


def happy_models():
    return models(
        plan=[
            "Thought: I need the city of the tower.\nAction: Retrieve",
            "Thought: The tower is in Paris. I look for the river.\nAction: Lookup",
            "Thought: The river is the Seine.\nAction: Finish",
        ],
        tool=["Eiffel Tower", "river", "Seine"],
        reflect=[RIGHT],
    )


def run(graph, context=None, instance=GOLD, question=QUESTION):
    """(node order, final output) of one episode."""
    payload = {"messages": [HumanMessage(content=question)]}
    if instance is not None:
        payload["instance"] = instance
    order, output = [], None
    for mode, chunk in stream(graph, payload, context={**CONTEXT, **(context or {})}, stream_mode=["updates", "values"]):
        if mode == "updates":
            order.extend(chunk)
        else:
            output = chunk
    return order, output


def test_retrieve_lookup_finish_reflect_right():
    m = happy_models()
    order, out = run(build_group_graph(m, backend=fake_backend()))
    assert order == ["start", "plan", "tool", "execute", "plan", "tool", "execute", "plan", "tool", "reflect", "finalize"]
    assert out["trajectory"] == [
        {"thought": "I need the city of the tower.", "action": "Retrieve", "argument": "Eiffel Tower",
         "observation": "The Eiffel Tower is a lattice tower in Paris."},
        {"thought": "The tower is in Paris. I look for the river.", "action": "Lookup", "argument": "river",
         "observation": "(Result 1 / 1) It stands by the Seine river."},
        {"thought": "The river is the Seine.", "action": "Finish", "argument": "Seine", "observation": ""},
    ]
    assert out["reflections"] == [{"thought": "The observation says so.", "verdict": "right"}]
    assert (out["answer"], out["reward"], out["halt_reason"]) == ("Seine", 1.0, "finish")
    assert out["score"] == {"reward": 1.0, "em": 1.0}
    assert isinstance(out["messages"][-1], AIMessage) and out["messages"][-1].content == "Seine"
    assert out["question"] == QUESTION
    usage = out["usage"]
    assert {role: u["calls"] for role, u in usage.items()} == {"plan": 3, "tool": 3, "reflect": 1}
    for role in ("plan", "tool", "reflect"):
        expected = sum(sum(len(str(msg.content)) for msg in call) // 4 for call in m[role].calls)
        assert usage[role]["prompt_tokens"] == expected > 0
        assert usage[role]["completion_tokens"] > 0
    # the stop sequences of each kind of call reach the models
    assert m["tool"].call_kwargs[0]["stop"] == list(KINDS["tool"].chat_stops)
    assert m["plan"].call_kwargs[0]["stop"] == list(KINDS["plan"].chat_stops)


def test_prompts_sent_equal_the_training_records():
    """The round trip: what each agent is asked at step i is the prompt of the
    training record cut from the same trajectory for step i."""
    m = happy_models()
    _, out = run(build_group_graph(m, backend=fake_backend()))
    records = chat_records(
        out["trajectory"], FakeTask.description, list(TOOLS[n] for n in FakeTask.default_tools), out["question"],
        out["reflections"], record_id="q1",
    )
    for agent in ("plan", "tool", "reflect"):
        sent = m[agent].prompts()
        assert len(sent) == len(records[agent]) > 0
        for prompt, record in zip(sent, records[agent]):
            assert prompt == record["messages"][:-1]
            assert record["messages"][-1]["role"] == "assistant"


def test_reflect_wrong_retries_once_then_right():
    m = models(
        plan=["Thought: Guess.\nAction: Finish", "Thought: Check the city.\nAction: Retrieve",
              "Thought: Paris is on the Seine.\nAction: Finish"],
        tool=["Loire", "Paris", "Seine"],
        reflect=[WRONG, RIGHT],
    )
    order, out = run(build_group_graph(m, backend=fake_backend()), {"max_reflections": 1})
    assert order == ["start", "plan", "tool", "reflect", "plan", "tool", "execute", "plan", "tool", "reflect", "finalize"]
    assert [r["verdict"] for r in out["reflections"]] == ["wrong", "right"]
    assert (out["answer"], out["reward"], out["halt_reason"]) == ("Seine", 1.0, "finish")
    # the plan agent saw the wrong reflection and the retry note
    second_plan = m["plan"].calls[1][1].content
    assert "Action: Reflect[wrong]" in second_plan and builders.fragment("retry") in second_plan


def test_reflect_wrong_without_retries_left_halts():
    m = models(plan=["Thought: Guess.\nAction: Finish"], tool=["Loire"], reflect=[WRONG])
    order, out = run(build_group_graph(m, backend=fake_backend()), {"max_reflections": 0})
    assert order == ["start", "plan", "tool", "reflect", "finalize"]
    assert (out["answer"], out["reward"], out["halt_reason"]) == ("Loire", 0.0, "max_reflections")


def test_reflection_off_ends_at_finish():
    m = models(plan=["Thought: It is the Seine.\nAction: Finish"], tool=["Seine"])
    order, out = run(build_group_graph(m, backend=fake_backend()), {"reflect": False})
    assert order == ["start", "plan", "tool", "finalize"]
    assert out["halt_reason"] == "finish" and out["reflections"] == [] and m["reflect"].calls == []


def test_step_limit():
    m = models(plan=["Thought: Look.\nAction: Retrieve"] * 2, tool=["Paris", "Seine"])
    order, out = run(build_group_graph(m, backend=fake_backend()), {"max_steps": 2})
    assert order == ["start", "plan", "tool", "execute", "plan", "tool", "execute", "plan", "finalize"]
    assert out["halt_reason"] == "max_steps" and out["answer"] is None and out["reward"] is None
    assert len(out["trajectory"]) == 2
    assert out["messages"][-1].content == builders.fragment("no_answer", reason="max_steps")


def test_malformed_outputs_get_feedback_then_recover():
    m = models(
        plan=["", "Thought: Use a map.\nAction: Map",
              "Thought: Look up the tower.\nAction: Retrieve", "Thought: Read the river.\nAction: Lookup",
              "Thought: Seine.\nAction: Finish"],
        tool=["Eiffel Tower", "", "Seine"],
        reflect=[RIGHT],
    )
    order, out = run(build_group_graph(m, backend=fake_backend()), {"max_invalid": 3})
    steps = out["trajectory"]
    assert [s["action"] for s in steps] == ["", "Map", "Retrieve", "Lookup", "Finish"]
    assert steps[0]["observation"] == builders.fragment("invalid_plan", actions="Retrieve, Lookup, Finish")
    assert steps[1]["observation"] == builders.fragment("unknown_action", action="Map", actions="Retrieve, Lookup, Finish")
    assert steps[3]["observation"] == builders.fragment("empty_argument", action="Lookup", usage="Lookup[keyword]")
    assert out["halt_reason"] == "finish" and out["answer"] == "Seine"
    # the feedback is in the next prompt
    assert "Map is not an available action" in m["plan"].calls[2][1].content
    assert order.count("plan") == 5


def test_too_many_malformed_outputs_in_a_row_halt():
    m = models(plan=["", "Thought: no idea", ""], tool=[])
    order, out = run(build_group_graph(m, backend=fake_backend()), {"max_invalid": 2})
    assert order == ["start", "plan", "plan", "finalize"]
    assert out["halt_reason"] == "parse_error" and out["answer"] is None
    assert [s["thought"] for s in out["trajectory"]] == ["", "no idea"]


def test_a_thought_without_action_is_completed_by_a_second_call():
    m = models(plan=["Thought: Seine, surely.", " Finish"], tool=["Seine"], reflect=["Thought: Looks fine.", "right]"])
    order, out = run(build_group_graph(m, backend=fake_backend()))
    assert order == ["start", "plan", "tool", "reflect", "finalize"]
    assert m["plan"].prefills() == ["Thought:", "Thought: Seine, surely.\nAction:"]
    assert m["plan"].prompts()[0] == m["plan"].prompts()[1]
    assert m["reflect"].prefills() == ["Thought:", "Thought: Looks fine.\nAction: Reflect["]
    assert m["tool"].prefills() == [None]  # the tool agent writes its argument from scratch
    assert out["trajectory"][0]["thought"] == "Seine, surely." and out["trajectory"][0]["action"] == "Finish"
    assert out["reflections"] == [{"thought": "Looks fine.", "verdict": "right"}]
    assert out["usage"]["plan"]["calls"] == 2 and out["usage"]["reflect"]["calls"] == 2


def test_prefill_can_be_turned_off():
    m = models(plan=["Thought: Seine.\nAction: Finish"], tool=["Seine"], reflect=["Thought: ok\nAction: Reflect[right]"])
    _, out = run(build_group_graph(m, backend=fake_backend()), {"prefill": False})
    assert m["plan"].prefills() == [None] and m["reflect"].prefills() == [None]
    assert out["halt_reason"] == "finish"


def test_unreadable_reflection_lets_the_answer_stand():
    m = models(plan=["Thought: Seine.\nAction: Finish"], tool=["Seine"], reflect=["I think it is fine maybe", "hmm"])
    _, out = run(build_group_graph(m, backend=fake_backend()))
    assert out["halt_reason"] == "finish" and out["answer"] == "Seine" and out["reflections"] == []


def test_context_budget_halts_before_calling_the_model():
    m = models(plan=[], tool=[])
    order, out = run(build_group_graph(m, backend=fake_backend()), {"max_context_tokens": 300})
    assert order == ["start", "plan", "finalize"]
    assert out["halt_reason"] == "context" and m["plan"].calls == []


def test_one_pass_mode_plans_everything_first():
    m = models(
        plan=["Subgoal 1: Find the tower's city. Action: Retrieve\nSubgoal 2: Find its river. Action: Lookup\n"
              "Subgoal 3: Answer. Action: Finish"],
        tool=["Eiffel Tower", "river", "Seine"],
        reflect=[RIGHT],
    )
    order, out = run(build_group_graph(m, backend=fake_backend()), {"mode": "one_pass"})
    assert order == ["start", "plan_all", "ground", "tool", "execute", "ground", "tool", "execute",
                     "ground", "tool", "reflect", "finalize"]
    assert [(s["thought"], s["action"], s["argument"]) for s in out["trajectory"]] == [
        ("Find the tower's city.", "Retrieve", "Eiffel Tower"), ("Find its river.", "Lookup", "river"),
        ("Answer.", "Finish", "Seine"),
    ]
    assert out["reward"] == 1.0 and len(m["plan"].calls) == 1
    tools = [TOOLS["Retrieve"], TOOLS["Lookup"]]
    records = chat_records(out["trajectory"], FakeTask.description, tools, out["question"], out["reflections"],
                           agents=("tool",))
    assert m["plan"].prompts()[0] == builders.one_pass_plan_messages(FakeTask.description, tools, out["question"])
    assert m["tool"].prompts() == [r["messages"][:-1] for r in records["tool"]]


def test_one_pass_without_finish_gets_one_and_replans_after_wrong():
    m = models(
        plan=["Subgoal 1: Find the city. Action: Retrieve", "Subgoal 1: Answer again. Action: Finish"],
        tool=["Eiffel Tower", "Paris", "Seine"],
        reflect=[WRONG, RIGHT],
    )
    order, out = run(build_group_graph(m, backend=fake_backend()), {"mode": "one_pass"})
    assert order == ["start", "plan_all", "ground", "tool", "execute", "ground", "tool", "reflect",
                     "plan_all", "ground", "tool", "reflect", "finalize"]
    assert out["trajectory"][1]["thought"] == builders.fragment("finish_subgoal")
    assert out["answer"] == "Seine" and out["halt_reason"] == "finish"
    assert m["plan"].calls[1][1].content.endswith(builders.fragment("one_pass_replan_instruction"))


def test_ainvoke_runs_episodes_concurrently():
    graphs = [build_group_graph(happy_models(), backend=fake_backend()) for _ in range(3)]

    async def main():
        payload = {"messages": [HumanMessage(content=QUESTION)], "instance": GOLD}
        return await asyncio.gather(*(g.ainvoke(payload, context=CONTEXT) for g in graphs))

    results = asyncio.run(main())
    assert [r["answer"] for r in results] == ["Seine"] * 3
    assert all(r["halt_reason"] == "finish" and len(r["trajectory"]) == 3 for r in results)


def test_task_is_loaded_once_per_process():
    task = FakeTask()
    backend = fake_backend(task)
    graph = build_group_graph(happy_models(), backend=backend)
    run(graph)
    assert task.loads == 1


def test_a_thread_keeps_the_chat_and_starts_a_fresh_episode():
    m = models(plan=["Thought: Seine.\nAction: Finish", "Thought: Paris.\nAction: Finish"], tool=["Seine", "Paris"],
               reflect=[RIGHT, RIGHT])
    graph = build_group_graph(m, backend=fake_backend(), checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "t1"}}
    invoke(graph, {"messages": [HumanMessage(content=QUESTION)]}, config, context=CONTEXT)
    out = invoke(graph, {"messages": [HumanMessage(content="Which city is the tower in?")]}, config, context=CONTEXT)
    assert [msg.type for msg in out["messages"]] == ["human", "ai", "human", "ai"]
    assert out["answer"] == "Paris" and len(out["trajectory"]) == 1
    assert out["reward"] is None  # no gold answer for a chat question
    assert m["plan"].calls[1][1].content == "Question: Which city is the tower in?"


def test_question_from_the_instance_alone():
    m = models(plan=["Thought: Seine.\nAction: Finish"], tool=["Seine"], reflect=[RIGHT])
    out = invoke(build_group_graph(m, backend=fake_backend()), {"messages": [], "instance": GOLD}, context=CONTEXT)
    assert [msg.type for msg in out["messages"]] == ["human", "ai"] and out["reward"] == 1.0


def test_bad_input_is_refused_clearly():
    graph = build_group_graph(happy_models(), backend=fake_backend())
    with pytest.raises(ValueError, match="no question"):
        invoke(graph, {"messages": []}, context=CONTEXT)
    with pytest.raises(ValidationError, match="max_step"):
        invoke(graph, {"messages": [HumanMessage(content=QUESTION)]}, context={**CONTEXT, "max_step": 3})
    with pytest.raises(TaskSetupError, match="Calculator"):
        invoke(graph, {"messages": [HumanMessage(content=QUESTION)]}, context={**CONTEXT, "tools": ["Calculator"]})
    with pytest.raises(TaskSetupError, match="not a valid TaskInstance"):
        invoke(graph, {"messages": [HumanMessage(content=QUESTION)], "instance": {"qid": 1}}, context=CONTEXT)


def test_exported_graphs_have_no_checkpointer_and_show_the_context():
    from autoact.graph import exported

    for graph in (exported.group, exported.react):
        assert graph.checkpointer is None
    schema = exported.group.get_context_jsonschema()
    assert {"base_url", "task", "tools", "max_steps", "temperature", "max_tokens", "reflect", "max_reflections",
            "mode", "plan_model", "tool_model", "reflect_model"} <= set(schema["properties"])
    assert all(field.get("description") for field in schema["properties"].values())
    assert set(exported.group.get_input_jsonschema()["properties"]) == {"messages", "instance"}
    assert {"messages", "trajectory", "answer", "reward", "halt_reason", "usage"} <= set(
        exported.group.get_output_jsonschema()["properties"]
    )
