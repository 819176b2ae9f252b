"""Prompt builders: rendering, worked examples, token budget and training records."""

from __future__ import annotations

from pathlib import Path

import pytest

from autoact.prompts import builders
from autoact.prompts.builders import PromptError
from autoact.prompts.kinds import KINDS
from autoact.prompts.records import training_records


def chat_records(*args, **kwargs):
    return training_records(*args, prompt_format="chat", **kwargs)


TASK = "Answer questions about places using a small encyclopedia."
TOOLS = [
    {"name": "Retrieve", "description": "Get the first sentence of an encyclopedia page.", "usage": "Retrieve[entity]"},
    {"name": "Lookup", "description": "Next sentence with the keyword in the last page.", "usage": "Lookup[keyword]"},
]
QUESTION = "Which river runs through the city of the Eiffel Tower?"
STEPS = [
    {"thought": "I need the city of the tower.", "action": "Retrieve", "argument": "Eiffel Tower",
     "observation": "The Eiffel Tower is a lattice tower in Paris."},
    {"thought": "Now the river of Paris.", "action": "Lookup", "argument": "river",
     "observation": "(Result 1 / 1) The city is built on the Seine river."},
    {"thought": "It is the Seine.", "action": "Finish", "argument": "Seine", "observation": ""},
]
REFLECTION = {"thought": "The observation names the Seine.", "verdict": "right"}


def test_history_renders_the_protocol_lines():
    text = builders.render_history(STEPS, [REFLECTION])
    assert text.splitlines() == [
        "Thought: I need the city of the tower.",
        "Action: Retrieve[Eiffel Tower]",
        "Observation: The Eiffel Tower is a lattice tower in Paris.",
        "Thought: Now the river of Paris.",
        "Action: Lookup[river]",
        "Observation: (Result 1 / 1) The city is built on the Seine river.",
        "Thought: It is the Seine.",
        "Action: Finish[Seine]",
        "Thought: The observation names the Seine.",
        "Action: Reflect[right]",
    ]


def test_wrong_reflection_is_followed_by_the_retry_note():
    text = builders.render_history(STEPS, [{"thought": "Unsupported.", "verdict": "wrong"}])
    assert text.splitlines()[-3:] == [
        "Thought: Unsupported.",
        "Action: Reflect[wrong]",
        f"Observation: {builders.fragment('retry')}",
    ]


def test_long_observations_are_cut_and_flattened():
    step = {**STEPS[0], "observation": "line one\nline two " + "x" * 1000}
    text = builders.render_history([step], obs_chars=50)
    observation = text.splitlines()[-1]
    assert observation.startswith("Observation: line one line two x")
    assert observation.endswith(builders.fragment("truncated"))
    assert len(observation) == len("Observation: ") + 50 + len(builders.fragment("truncated"))


def test_plan_prompt_contents():
    messages = builders.plan_messages(TASK, TOOLS, QUESTION, STEPS[:1])
    assert [m["role"] for m in messages] == ["system", "user"]
    system, user = messages[0]["content"], messages[1]["content"]
    assert f"Task: {TASK}" in system
    assert "- Retrieve[entity]: Get the first sentence of an encyclopedia page." in system
    assert "- Finish[answer]: give the final answer and end the task" in system
    # the worked example for Retrieve + Lookup, shown at its third step
    assert "Question: What river runs through the city where the Eiffel Tower was built?" in system
    assert "Example output:\nThought: This sentence does not name a river." in system
    assert "Action: Lookup" in system and "$" not in system
    assert user == (
        f"Question: {QUESTION}\n"
        "Thought: I need the city of the tower.\n"
        "Action: Retrieve[Eiffel Tower]\n"
        "Observation: The Eiffel Tower is a lattice tower in Paris."
    )


def test_tool_prompt_asks_for_the_argument_of_the_chosen_action():
    messages = builders.tool_messages(TASK, TOOLS, QUESTION, STEPS[:1], "Now the river of Paris.", "Lookup")
    assert messages[1]["content"].splitlines()[-3:] == [
        "Thought: Now the river of Paris.",
        "Action: Lookup",
        "Write the argument of Lookup, as in Lookup[keyword].",
    ]
    finish = builders.tool_messages(TASK, TOOLS, QUESTION, STEPS[:2], "It is the Seine.", "Finish")
    assert finish[1]["content"].endswith("Write the argument of Finish, as in Finish[answer].")
    with pytest.raises(PromptError, match="Search"):
        builders.tool_messages(TASK, TOOLS, QUESTION, [], "t", "Search")


def test_reflect_and_react_prompts_need_a_finish_to_judge():
    with pytest.raises(PromptError, match="Finish"):
        builders.reflect_messages(TASK, TOOLS, QUESTION, STEPS[:2])
    with pytest.raises(PromptError, match="Finish"):
        builders.react_messages(TASK, TOOLS, QUESTION, STEPS[:2], reflect=True)
    user = builders.reflect_messages(TASK, TOOLS, QUESTION, STEPS)[1]["content"]
    assert user.endswith("Action: Finish[Seine]\nJudge the answer: Seine")
    react = builders.react_messages(TASK, TOOLS, QUESTION, STEPS, reflect=True)[1]["content"]
    assert react.endswith(builders.fragment("react_reflect_instruction"))


def test_react_prompt_shows_a_whole_example_episode():
    system = builders.react_messages(TASK, TOOLS, QUESTION)[0]["content"]
    assert "Action: Lookup[river]\nObservation: The city is built on both banks of the Seine river." in system
    # up to Finish: Reflect is asked for only after an answer (small models copied it as an action)
    assert system.rstrip().endswith("Action: Finish[Seine]") and "Reflect" not in system
    assert builders.react_messages(TASK, TOOLS, QUESTION)[1]["content"] == f"Question: {QUESTION}"


def test_one_pass_prompt_and_example_subgoals():
    messages = builders.one_pass_plan_messages(TASK, TOOLS, QUESTION)
    assert "Subgoal 1: Find the page of the Eiffel Tower to learn where it stands. Action: Retrieve" in messages[0]["content"]
    assert messages[1]["content"] == f"Question: {QUESTION}\n{builders.fragment('one_pass_instruction')}"
    replan = builders.one_pass_plan_messages(TASK, TOOLS, QUESTION, STEPS, [{"thought": "no", "verdict": "wrong"}])
    assert replan[1]["content"].endswith(builders.fragment("one_pass_replan_instruction"))


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["Retrieve", "Lookup", "Search"], "page-and-lookup"),
        (["Retrieve", "Search"], "search"),
        (["Search"], "search"),
        (["Calculator", "Python"], "calculate"),
        (["Python"], "reason"),
        ([], "reason"),
    ],
)
def test_example_selection_uses_only_selected_tools(names, expected):
    assert builders.select_example(names)["name"] == expected


def test_every_example_is_well_formed():
    for example in builders.examples():
        steps = example["steps"]
        assert steps[-1]["action"] == "Finish", example["name"]
        assert all(s["action"] in [*example["tools"], "Finish"] for s in steps), example["name"]
        assert example["reflection"]["verdict"] in ("right", "wrong")
        builders.render_history(steps, [example["reflection"]])


def test_tools_from_langchain_objects():
    from langchain_core.tools import Tool

    tool = Tool(name="Search", func=lambda q: q, description="Top  passages\nfor a query.", metadata={"usage": "Search[query]"})
    assert builders.tool_spec(tool) == {"name": "Search", "description": "Top passages for a query.", "usage": "Search[query]"}
    with pytest.raises(PromptError, match="Finish is built in"):
        builders.tool_specs([{"name": "Finish"}])


def test_every_template_renders_without_placeholders_left():
    reflections = [{"thought": "no", "verdict": "wrong"}]
    history = [*STEPS, *STEPS]
    prompts = [
        builders.react_messages(TASK, TOOLS, QUESTION, history, reflections, reflect=True),
        builders.plan_messages(TASK, TOOLS, QUESTION, history[:4], reflections),
        builders.tool_messages(TASK, TOOLS, QUESTION, history[:4], "t", "Lookup", reflections),
        builders.reflect_messages(TASK, TOOLS, QUESTION, history, reflections),
        builders.one_pass_plan_messages(TASK, TOOLS, QUESTION, history[:3], reflections[:1]),
    ]
    for messages in prompts:
        for message in messages:
            assert "${" not in message["content"] and "\n\n\n" not in message["content"]
    names = {p.stem for p in builders.TEMPLATE_DIR.glob("*.txt")}
    assert {"react_system", "plan_system", "tool_system", "reflect_system", "one_pass_system"} <= names


# ---- training records ---------------------------------------------------------------------------
def test_training_records_exact_contents():
    records = chat_records(STEPS, TASK, TOOLS, QUESTION, [REFLECTION], record_id="q1")
    assert sorted(records) == ["plan", "reflect", "tool"]
    plan, tool, reflect = records["plan"], records["tool"], records["reflect"]
    assert [r["id"] for r in plan] == ["q1/plan/0", "q1/plan/1", "q1/plan/2"]
    assert [r["messages"][-1] for r in plan] == [
        {"role": "assistant", "content": "Thought: I need the city of the tower.\nAction: Retrieve"},
        {"role": "assistant", "content": "Thought: Now the river of Paris.\nAction: Lookup"},
        {"role": "assistant", "content": "Thought: It is the Seine.\nAction: Finish"},
    ]
    assert [r["messages"][-1]["content"] for r in tool] == ["Eiffel Tower", "river", "Seine"]
    assert len(reflect) == 1 and reflect[0]["id"] == "q1/reflect/0" and reflect[0]["agent"] == "reflect"
    assert reflect[0]["messages"][-1]["content"] == "Thought: The observation names the Seine.\nAction: Reflect[right]"
    # every prompt is exactly what the builder gives for that point of the episode
    for i, record in enumerate(plan):
        assert record["agent"] == "plan"
        assert record["messages"][:-1] == builders.plan_messages(TASK, TOOLS, QUESTION, STEPS[:i])
    for i, record in enumerate(tool):
        step = STEPS[i]
        assert record["messages"][:-1] == builders.tool_messages(TASK, TOOLS, QUESTION, STEPS[:i], step["thought"], step["action"])
    assert reflect[0]["messages"][:-1] == builders.reflect_messages(TASK, TOOLS, QUESTION, STEPS)


def test_records_after_a_retry_see_the_wrong_reflection():
    retry = {"thought": "Check the river page.", "action": "Retrieve", "argument": "Seine", "observation": "The Seine is a river."}
    steps = [*STEPS, retry, {"thought": "Still the Seine.", "action": "Finish", "argument": "Seine", "observation": ""}]
    reflections = [{"thought": "Not sure.", "verdict": "wrong"}, REFLECTION]
    records = chat_records(steps, TASK, TOOLS, QUESTION, reflections, record_id="q2")
    assert len(records["plan"]) == 5 and len(records["reflect"]) == 2
    fourth = records["plan"][3]["messages"][1]["content"]
    assert "Action: Reflect[wrong]" in fourth and fourth.endswith(builders.fragment("retry"))
    assert records["reflect"][1]["messages"][:-1] == builders.reflect_messages(
        TASK, TOOLS, QUESTION, steps, reflections[:1]
    )


def test_invalid_steps_give_no_record_but_stay_in_history():
    bad = {"thought": "Hmm.", "action": "Fly", "argument": "", "observation": "Fly is not an available action."}
    empty = {"thought": "Look.", "action": "Lookup", "argument": "", "observation": "Lookup needs an argument."}
    steps = [STEPS[0], bad, empty, *STEPS[1:]]
    records = chat_records(steps, TASK, TOOLS, QUESTION, [REFLECTION])
    assert [r["id"].rsplit("/", 1)[1] for r in records["plan"]] == ["0", "2", "3", "4"]
    assert [r["id"].rsplit("/", 1)[1] for r in records["tool"]] == ["0", "3", "4"]
    assert "Action: Fly[]" in records["tool"][1]["messages"][1]["content"]


def test_records_are_cut_for_the_three_sub_agents_only():
    """The single agent and the one-pass plan are not trained: the one-pass planner is
    the plan adapter, trained on the iterative plan records."""
    with pytest.raises(PromptError, match="unknown agents .'one_pass', 'react'.; records are cut for plan, tool, reflect"):
        chat_records(STEPS, TASK, TOOLS, QUESTION, [REFLECTION], agents=("react", "one_pass"))
    # the one-pass plan's text is what the one-pass prompt's worked example shows
    assert builders.subgoal_lines(STEPS) == (
        "Subgoal 1: I need the city of the tower. Action: Retrieve\n"
        "Subgoal 2: Now the river of Paris. Action: Lookup\n"
        "Subgoal 3: It is the Seine. Action: Finish"
    )


def test_bad_record_input_is_refused_clearly():
    with pytest.raises(PromptError, match="reflections but only"):
        chat_records(STEPS[:2], TASK, TOOLS, QUESTION, [REFLECTION])
    with pytest.raises(PromptError, match="unknown agents"):
        chat_records(STEPS, TASK, TOOLS, QUESTION, agents=("critic",))
    with pytest.raises(PromptError, match="argument"):
        chat_records([{"thought": "x", "action": "Retrieve"}], TASK, TOOLS, QUESTION)
    with pytest.raises(PromptError, match="verdict"):
        chat_records(STEPS, TASK, TOOLS, QUESTION, [{"thought": "x", "verdict": "maybe"}])


# ---- token budget with the real tokenizer --------------------------------------------------------------
@pytest.fixture(scope="module")
def tokenizer(real_settings):
    folder = Path(real_settings.home) / "models" / "smollm2-135m-instruct"
    if not (folder / "tokenizer.json").is_file():
        pytest.skip(f"the embedded model is not prepared at {folder} (run `autoact model prepare`)")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(folder))


def _tokens(tokenizer, messages) -> int:
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def test_prompts_fit_the_embedded_models_context(tokenizer):
    """Eight steps with long observations (cut at the default 400 characters), a wrong
    reflection, the real tool library's descriptions: every agent's prompt leaves
    room for 128 generated tokens in 2048."""
    from autoact.tools import load_task, tool_library

    task = load_task("demo")
    library = tool_library(task)
    tools = [library[n] for n in task.default_tools]
    long_obs = "Paris is the capital and most populous city of France, on the Seine. " * 20
    steps = []
    for i in range(7):
        steps.append({"thought": f"Step {i}: I should look at another page about the question and its entities.",
                      "action": "Retrieve" if i % 2 else "Lookup", "argument": f"Entity number {i}", "observation": long_obs})
    steps.append({"thought": "The answer is the Seine.", "action": "Finish", "argument": "Seine", "observation": ""})
    reflections = [{"thought": "The pages do not say it directly.", "verdict": "wrong"}]
    worst = max(
        _tokens(tokenizer, builders.react_messages(TASK, tools, QUESTION, steps, reflect=True)),
        _tokens(tokenizer, builders.plan_messages(TASK, tools, QUESTION, steps[:7])),
        _tokens(tokenizer, builders.tool_messages(TASK, tools, QUESTION, steps[:7], "t", "Finish")),
        _tokens(tokenizer, builders.reflect_messages(TASK, tools, QUESTION, steps)),
        _tokens(tokenizer, builders.one_pass_plan_messages(TASK, tools, QUESTION, steps, reflections)),
    )
    assert 1000 < worst and worst + 128 <= 2048, worst  # measured: ~1640 tokens
    # and the graphs' estimate (3 characters a token before usage is known) is cautious
    messages = builders.plan_messages(TASK, tools, QUESTION, steps[:7])
    assert sum(len(m["content"]) for m in messages) / 3.0 >= _tokens(tokenizer, messages) * 0.9


def test_every_target_starts_with_its_prefill():
    """The graphs open the assistant turn with the prefill; the training targets of
    the same kind must begin with it, so the token sequences stay the same."""
    records = chat_records(STEPS, TASK, TOOLS, QUESTION, [REFLECTION], agents=("plan", "reflect"))
    for agent in ("plan", "reflect"):
        for record in records[agent]:
            assert record["messages"][-1]["content"].startswith(KINDS[agent].chat_prefill), record["id"]
    assert KINDS["tool"].chat_prefill is None  # the tool agent writes its argument from scratch
