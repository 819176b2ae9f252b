"""Transcript prompts, their training records, worked examples and the format guides."""

from __future__ import annotations

import re

import pytest

from autoact.prompts import builders, guides, transcript
from autoact.prompts.kinds import KINDS
from autoact.prompts.records import training_records
from autoact.prompts.builders import PromptError

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


def test_react_prompt_is_one_text_ending_where_the_model_continues():
    text = transcript.react_prompt(TASK, TOOLS, QUESTION, STEPS[:1])
    assert text.endswith(
        f"Question: {QUESTION}\nThought: I need the city of the tower.\nAction: Retrieve[Eiffel Tower]\n"
        "Observation: The Eiffel Tower is a lattice tower in Paris.\nThought:"
    )
    assert f"Task: {TASK}" in text and "- Finish[answer]: give the final answer and end the task" in text
    assert "Question:" not in text.split(f"Question: {QUESTION}")[0]  # no examples asked for, none shown


def test_examples_are_whole_episodes_before_the_question():
    examples = builders.default_examples(["Retrieve", "Lookup"])
    assert [e["shape"] for e in examples] == ["multi-hop", "one-hop"]  # the usual short shape last
    text = transcript.react_prompt(TASK, TOOLS, QUESTION, examples=examples)
    shown = text.split(f"\n\nQuestion: {QUESTION}")[0]
    for example in examples:
        assert transcript.episode_text(example) in shown
    assert "Reflect" not in shown  # the single agent's examples end at Finish
    reflect = transcript.reflect_prompt(TASK, TOOLS, QUESTION, STEPS, examples=examples)
    assert "Action: Reflect[right]" in reflect.split(f"Question: {QUESTION}")[0]


def test_each_agent_prompt_ends_with_its_opening():
    assert transcript.plan_prompt(TASK, TOOLS, QUESTION, STEPS[:1]).endswith("\nThought:")
    tool = transcript.tool_prompt(TASK, TOOLS, QUESTION, STEPS[:1], "Now the river of Paris.", "Lookup")
    assert tool.endswith("Observation: The Eiffel Tower is a lattice tower in Paris.\n"
                         "Thought: Now the river of Paris.\nAction: Lookup[")
    reflect = transcript.reflect_prompt(TASK, TOOLS, QUESTION, STEPS)
    assert reflect.endswith("Action: Finish[Seine]\nThought:")
    assert transcript.one_pass_prompt(TASK, TOOLS, QUESTION).endswith(f"Question: {QUESTION}\nSubgoal 1:")
    react_reflect = transcript.react_prompt(TASK, TOOLS, QUESTION, STEPS, reflect=True)
    assert react_reflect.endswith(builders.fragment("react_reflect_instruction") + "\nThought:")
    with pytest.raises(PromptError, match="Finish"):
        transcript.reflect_prompt(TASK, TOOLS, QUESTION, STEPS[:2])
    with pytest.raises(PromptError, match="Search"):
        transcript.tool_prompt(TASK, TOOLS, QUESTION, [], "t", "Search")


def test_training_records_continue_exactly_the_inference_prompts():
    records = training_records(STEPS, TASK, TOOLS, QUESTION, [REFLECTION], record_id="t1",
                                          agents=("plan", "tool", "reflect"))
    plan, tool, reflect = (records[a] for a in ("plan", "tool", "reflect"))
    assert [r["completion"] for r in plan] == [
        " I need the city of the tower.\nAction: Retrieve", " Now the river of Paris.\nAction: Lookup",
        " It is the Seine.\nAction: Finish",
    ]
    assert [r["completion"] for r in tool] == ["Eiffel Tower]", "river]", "Seine]"]
    assert reflect[0]["completion"] == " The observation names the Seine.\nAction: Reflect[right]"
    # below its header the single agent's prompt is the plan agent's, and plan and tool
    # together write the step the single agent writes
    react = KINDS["react"].transcript_prompt(TASK, TOOLS, QUESTION, history=STEPS[:1])
    assert react.split("\n\n", 1)[1] == plan[1]["prompt"].split("\n\n", 1)[1]
    assert plan[1]["completion"] + "[" + tool[1]["completion"] == " Now the river of Paris.\nAction: Lookup[river]"
    for i, step in enumerate(STEPS):
        assert plan[i]["prompt"] == transcript.plan_prompt(TASK, TOOLS, QUESTION, STEPS[:i])
        assert tool[i]["prompt"] == transcript.tool_prompt(TASK, TOOLS, QUESTION, STEPS[:i], step["thought"],
                                                           step["action"])
        # below their headers, plan and tool together write the step the single agent writes
        episode = lambda text: text.split("\n\n", 1)[1]  # noqa: E731
        assert episode(tool[i]["prompt"]) == episode(plan[i]["prompt"]) + plan[i]["completion"] + "["
    assert reflect[0]["prompt"] == transcript.reflect_prompt(TASK, TOOLS, QUESTION, STEPS)
    assert all(r["format"] == "transcript" and r["id"].startswith("t1/") for rs in records.values() for r in rs)
    # adapters' prompts carry no worked example: a trained agent needs none
    assert all("Eiffel Tower was built" not in r["prompt"] for r in plan)


def test_guides_accept_well_formed_steps_and_refuse_others():
    step = re.compile(guides.react_step(["Retrieve", "Lookup"]))
    assert step.fullmatch(" I need the tower.\nAction: Retrieve[Eiffel Tower]")
    assert step.fullmatch(" It is the Seine.\nAction: Finish[Seine]")
    assert not step.fullmatch(" I need the tower.\nAction: Search[Eiffel Tower]")
    assert not step.fullmatch(" x\nAction: Reflect[wrong]")  # a verdict is not an action
    choice = re.compile(guides.react_step(["Retrieve"], choices=["dolphin (mammal)", "shark"]))
    assert choice.fullmatch(" Dolphins are mammals.\nAction: Finish[dolphin (mammal)]")
    assert not choice.fullmatch(" Dolphins are mammals.\nAction: Finish[B]")  # an answer names an option
    plan = re.compile(guides.plan_step(["Retrieve", "Lookup"]))
    assert plan.fullmatch(" Now the river.\nAction: Lookup") and not plan.fullmatch(" x\nAction: Lookup[river]")
    assert re.fullmatch(guides.tool_argument("Retrieve"), "Eiffel Tower]")
    assert re.fullmatch(guides.tool_argument("Finish", ["yes", "no"]), "no]")
    assert not re.fullmatch(guides.tool_argument("Finish", ["yes", "no"]), "maybe]")
    verdict = re.compile(guides.reflection())
    assert verdict.fullmatch(" Supported.\nAction: Reflect[right]")
    assert not verdict.fullmatch(" Supported.\nAction: Reflect[maybe]")
