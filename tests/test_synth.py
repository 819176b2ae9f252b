"""Synthesis stages with a scripted chat model on the built-in demo task."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from autoact.graph import build_react_graph
from autoact.prompts import builders
from autoact.synth.differentiate import differentiate
from autoact.synth.filter import filter_trajectories, rationale_states_answer
from autoact.synth.journal import Journal
from autoact.synth.self_instruct import SelfInstruct, SelfInstructConfig, parse_items, reject_reason
from autoact.synth.tool_selection import parse_tool_names, select_tools
from autoact.synth.trajectories import synthesize_trajectories
from autoact.tools import TaskInstance, load_task, tool_library
from graph_fakes import scripted


@pytest.fixture(scope="module")
def demo():
    return load_task("demo")


# ---- parsing and validation ----------------------------------------------------------------
def test_parse_items_tolerates_numbering_and_short_labels():
    text = "1. Question: Who built the mill?\nAnswer: Ada Holm.\n\nQ: When was it built?\nA: 1820\nnoise\nQuestion: dangling"
    assert parse_items(text) == [("Who built the mill?", "Ada Holm"), ("When was it built?", "1820")]
    assert parse_items("") == [] and parse_items("no items here") == []


@pytest.mark.parametrize(
    "question,answer,source,reason",
    [
        ("Who?", "Ada", None, "question too short"),
        ("Who built the old mill?", "", None, "empty answer"),
        ("Who built the old mill?", " ".join(["word"] * 13), None, "answer too long"),
        ("Who built the old mill?", "The old mill was built by Ada Holm", None, "answer is a sentence"),
        ("Was the mill built by Ada Holm?", "Ada Holm", None, "answer given in the question"),
        ("Who built the old mill?", "Bo Lind", "The mill was built by Ada Holm.", "answer not in the source paragraphs"),
        ("Who built the old mill?", "Ada Holm", "The mill was built by Ada Holm.", None),
    ],
)
def test_reject_reasons(question, answer, source, reason):
    assert reject_reason(question, answer, source) == reason


def test_tool_names_are_validated_against_the_library():
    library = ["Retrieve", "Lookup", "Search", "Calculator"]
    assert parse_tool_names("Tools: search, Retrieve[entity], Hammer and lookup", library) == (
        ["Retrieve", "Lookup", "Search"], ["Hammer"])
    assert parse_tool_names("I would use nothing.", library)[0] == []


# ---- self-instruct -------------------------------------------------------------------------------
def test_self_instruct_dedups_drops_malformed_and_stops_when_fruitless(demo, tmp_path):
    seed_q = demo.seeds[0].question
    model = scripted(
        f"Question: {seed_q}\nAnswer: whatever",                      # duplicate of a seed
        "Question: Who painted the Harbour Mural?\nAnswer: Lise Varn",  # new
        "Question: who painted the harbour mural\nAnswer: Lise Varn.",  # duplicate after normalisation
        "I cannot write questions.",                                  # no item
        "",                                                           # empty
        "Question: Who?\nAnswer: x",                                  # malformed
    )
    config = SelfInstructConfig(n=5, k=1, max_fruitless_rounds=4)
    stage = SelfInstruct(demo, model, tmp_path, config, seed=1)
    report = asyncio.run(stage.run(concurrency=1))
    assert report["instances"] == 1 and report["stopped"] == "fruitless"
    instances = Journal(tmp_path / "instances.jsonl").records
    assert [(r["question"], r["answer"]) for r in instances] == [("Who painted the Harbour Mural?", "Lise Varn")]
    reasons = [x["reason"] for r in Journal(tmp_path / "self_instruct_rounds.jsonl").records for x in r["rejected"]]
    assert reasons == ["duplicate", "duplicate", "no Question/Answer item in the output", "empty output", "question too short"]
    # every prompt shows examples from the seeds (and later from what was accepted)
    assert all("Question:" in call[-1].content for call in model.calls)


def test_questions_that_ask_the_same_in_other_words_are_duplicates():
    from autoact.synth.self_instruct import question_key

    assert question_key("In which year was Sabine Orlo born?") == question_key("In what year was Sabine Orlo born")
    assert question_key("Who founded the Quillhaven Observatory?") != question_key(
        "When was the Quillhaven Observatory founded?")
    assert question_key("Who founded Velmora?") != question_key("Who founded Lumen Isle?")


def test_grounded_self_instruct_records_sources_and_checks_answers(demo, tmp_path):
    model = scripted(*["Question: Which town is named in this paragraph?\nAnswer: Zzyzx"] * 3)
    config = SelfInstructConfig(n=2, k=1, grounded=True, max_fruitless_rounds=3, linked_fraction=0.0)
    stage = SelfInstruct(demo, model, tmp_path, config, seed=3)
    report = asyncio.run(stage.run(concurrency=1))
    assert report["instances"] == 0
    rounds = Journal(tmp_path / "self_instruct_rounds.jsonl").records
    assert {x["reason"] for r in rounds for x in r["rejected"]} == {"answer not in the source paragraphs"}
    # the last user turn shows one corpus paragraph; earlier turns are worked examples
    last = model.calls[0][-1].content
    assert last.startswith("Paragraph: [") and model.calls[0][-2].type == "ai"

    # an answer copied from the shown paragraph is accepted with its source title
    title = last.split("[", 1)[1].split("]", 1)[0]
    paragraph = demo.corpus.get(title)
    answer = " ".join(paragraph.sentences[0].rstrip(".").split()[-2:])
    ok_model = scripted(f"Question: What does the first sentence about {title} end with?\nAnswer: {answer}")
    stage = SelfInstruct(demo, ok_model, tmp_path / "ok", SelfInstructConfig(n=1, k=1, grounded=True, linked_fraction=0.0), seed=3)
    asyncio.run(stage.run(concurrency=1))
    [record] = Journal(tmp_path / "ok" / "instances.jsonl").records
    assert record["meta"]["source_titles"] == [title] and record["answer"] == answer


def test_tool_selection_saves_choice_and_falls_back(demo, tmp_path):
    chosen = asyncio.run(select_tools(demo, scripted("Tools: Retrieve, Lookup, Teleport"), tmp_path / "a"))
    assert chosen["selected"] == ["Retrieve", "Lookup"] and chosen["unknown_names"] == ["Teleport"]
    assert json.loads((tmp_path / "a" / "tools.json").read_text())["selected"] == ["Retrieve", "Lookup"]
    fallback = asyncio.run(select_tools(demo, scripted("Use a browser."), tmp_path / "b"))
    assert fallback["fallback_to_defaults"] and fallback["selected"] == list(demo.default_tools)
    with pytest.raises(ValueError, match="unknown tool"):
        asyncio.run(select_tools(demo, scripted(), tmp_path / "c", fixed=["Hammer"]))


# ---- journals --------------------------------------------------------------------------------------------
def test_journal_drops_a_torn_line_and_duplicates(tmp_path):
    path = tmp_path / "j.jsonl"
    raw = '{"id": "a"}\n{"id": "b"}\n{"id": "a"}\n{"id": "c", "x": '
    path.write_text(raw)
    journal = Journal(path)
    assert [r["id"] for r in journal.records] == ["a", "b"]
    assert (journal.duplicates, journal.torn_tail) == (1, True)
    assert path.read_text() == raw  # loading changes nothing (see test_synth_journal.py)
    assert journal.append({"id": "c"}) and not journal.append({"id": "b"})
    assert [r["id"] for r in Journal(path).records] == ["a", "b", "c"]


# ---- trajectories, filter and differentiate ---------------------------------------------------------------
def solved_script(entity: str, answer: str) -> list[str]:
    return [
        f"Thought: I need the paragraph about {entity}.\nAction: Retrieve[{entity}]",
        f"Thought: The paragraph gives {answer}.\nAction: Finish[{answer}]",
        "Thought: The observation supports the answer.\nAction: Reflect[right]",
    ]


def test_trajectory_stage_filter_and_records(demo, tmp_path):
    inst = next(i for i in demo.split("train") if i.meta.get("level") == "easy")
    entity = inst.meta["supporting_titles"][0]
    wrong = TaskInstance("wrong-1", inst.question, "Nobody Atall")
    model = scripted(*solved_script(entity, inst.answer), *solved_script(entity, inst.answer))
    graph = build_react_graph({"meta": model})
    context = {"task": "demo", "tools": ["Retrieve", "Lookup"], "max_steps": 4, "max_reflections": 0,
               "prompt_format": "chat"}
    report = asyncio.run(synthesize_trajectories([inst, wrong], graph, context, tmp_path, concurrency=1))
    assert report["synthesized"] == 2 and report["failed_this_run"] == 0
    records = {r["id"]: r for r in Journal(tmp_path / "trajectories.jsonl").records}
    good = records[inst.id]
    assert good["reward"] == 1.0 and good["halt_reason"] == "finish"
    assert [s["action"] for s in good["trajectory"]] == ["Retrieve", "Finish"]
    assert good["usage"]["meta"]["calls"] == 3
    assert records["wrong-1"]["reward"] == 0.0

    kept, filter_report = filter_trajectories(records.values(), cap=10)
    assert [r["id"] for r in kept] == [inst.id]
    assert filter_report == {"total": 2, "kept": 1, "dropped": {"reward below 1": 1}, "over_cap": 0, "min_reward": 1.0,
                             "by_kind": {}}  # the task's own questions carry no answer kind

    library = tool_library(demo)
    tools = [library["Retrieve"], library["Lookup"]]
    counts = differentiate(kept, demo.description, tools, tmp_path / "data", prompt_format="chat")
    assert counts == {"plan": 2, "tool": 2, "reflect": 1}
    assert good["scores"]["reward"] == 1.0 and good["scores"]["em"] == 1.0  # the graph's score, recorded
    plan = [json.loads(l) for l in (tmp_path / "data" / "plan.jsonl").read_text().splitlines()]
    tool = [json.loads(l) for l in (tmp_path / "data" / "tool.jsonl").read_text().splitlines()]
    reflect = [json.loads(l) for l in (tmp_path / "data" / "reflect.jsonl").read_text().splitlines()]
    steps = good["trajectory"]
    assert [r["messages"][-1]["content"] for r in plan] == [
        f"Thought: I need the paragraph about {entity}.\nAction: Retrieve",
        f"Thought: The paragraph gives {inst.answer}.\nAction: Finish",
    ]
    assert [r["messages"][-1]["content"] for r in tool] == [entity, inst.answer]
    assert reflect[0]["messages"][-1]["content"] == "Thought: The observation supports the answer.\nAction: Reflect[right]"
    # prompts are exactly the builders' (the ones the group graph sends at inference)
    assert plan[1]["messages"][:-1] == builders.plan_messages(demo.description, tools, inst.question, steps[:1])
    assert tool[0]["messages"][:-1] == builders.tool_messages(
        demo.description, tools, inst.question, [], thought=steps[0]["thought"], action="Retrieve")
    assert reflect[0]["messages"][:-1] == builders.reflect_messages(demo.description, tools, inst.question, steps)
    assert all(r["agent"] == "plan" for r in plan) and plan[0]["id"].startswith(inst.id)


def test_trajectory_stage_resumes_and_retries_errors(demo, tmp_path):
    insts = [i for i in demo.split("train") if i.meta.get("level") == "easy"][:3]

    class Boom(Exception):
        pass

    class FlakyGraph:
        def __init__(self, fail_ids):
            self.fail_ids, self.calls = set(fail_ids), []

        async def ainvoke(self, payload, context):
            inst = payload["instance"]
            self.calls.append(inst["id"])
            if inst["id"] in self.fail_ids:
                raise Boom("server at http://127.0.0.1:1/v1 unreachable")
            return {"trajectory": [], "reflections": [], "answer": "x", "reward": 0.0, "halt_reason": "finish", "usage": {}}

    first = FlakyGraph({insts[1].id})
    report = asyncio.run(synthesize_trajectories(insts, first, {"tools": []}, tmp_path, concurrency=2))
    assert report["synthesized"] == 2 and report["failed_this_run"] == 1
    errors = Journal(tmp_path / "trajectory_errors.jsonl", key="attempt").records
    assert errors[0]["id"] == insts[1].id and "127.0.0.1:1" in errors[0]["error"]
    second = FlakyGraph(set())
    report = asyncio.run(synthesize_trajectories(insts, second, {"tools": []}, tmp_path, concurrency=2))
    assert second.calls == [insts[1].id] and report["synthesized"] == 3
    ids = [r["id"] for r in Journal(tmp_path / "trajectories.jsonl").records]
    assert sorted(ids) == sorted(i.id for i in insts) and len(ids) == len(set(ids))


def test_filter_threshold_cap_and_one_per_instance():
    def rec(i, reward, sample=0, verdict="right"):
        return {"id": f"q{i}#{sample}", "instance_id": f"q{i}", "sample": sample, "status": "ok", "reward": reward,
                "trajectory": [{"action": "Finish"}], "reflections": [{"verdict": verdict}]}

    records = [rec(1, 1.0, "r0"), rec(1, 1.0), rec(1, 1.0, 1), rec(2, 0.5), rec(3, 1.0, verdict="wrong"),
               rec(4, 1.0), {"id": "q5", "status": "error"}]
    kept, report = filter_trajectories(records, cap=1)
    assert [r["id"] for r in kept] == ["q1#0"]
    assert report["dropped"] == {"instance already has a kept trajectory": 2, "reward below 1": 1,
                                 "judged wrong by its own reflection": 1, "error": 1}
    assert report["over_cap"] == 1
    kept, _ = filter_trajectories(records, min_reward=0.5)
    assert [r["id"] for r in kept] == ["q1#0", "q2#0", "q4#0"]


def test_the_filter_counts_questions_and_kept_ones_per_answer_kind():
    def rec(i, reward, kind, sample=0, bridge=False):
        return {"id": f"q{i}#{sample}", "instance_id": f"q{i}", "sample": sample, "status": "ok", "reward": reward,
                "trajectory": [{"action": "Finish"}], "reflections": [],
                "meta": {"kind": kind, "bridge": bridge}}

    records = [rec(1, 1.0, "year"), rec(1, 1.0, "year", 1), rec(2, 0.0, "year"), rec(3, 0.5, "person"),
               rec(4, 1.0, "place", bridge=True), {"id": "q5", "status": "error"}]
    _, report = filter_trajectories(records)
    assert report["by_kind"] == {"bridge": {"questions": 1, "kept": 1}, "person": {"questions": 1, "kept": 0},
                                 "year": {"questions": 2, "kept": 1}}


def test_rationalized_episodes_are_hinted_and_recorded_without_the_hint(demo, tmp_path):
    from autoact.synth.trajectories import hinted_question

    inst = next(i for i in demo.split("train") if i.meta.get("level") == "easy")
    entity = inst.meta["supporting_titles"][0]
    assert hinted_question(inst) == f"{inst.question} (Hint: the answer is {inst.answer}. It is in the paragraph titled {entity}.)"
    # first a failed zero-shot episode, then a hinted one that reaches the answer, then one that leaks the hint
    model = scripted(
        "Thought: I guess.\nAction: Finish[Nobody]", "Thought: Hm.\nAction: Reflect[right]",
        *solved_script(entity, inst.answer),
    )
    graph = build_react_graph({"meta": model})
    context = {"task": "demo", "tools": ["Retrieve", "Lookup"], "max_steps": 4, "max_reflections": 0}
    report = asyncio.run(synthesize_trajectories([inst], graph, context, tmp_path, 1, rationalize=True))
    assert report["solved_by_origin"] == {"rationalized": 1}
    hinted = [any("(Hint: the answer is" in str(m.content) for m in call) for call in model.calls]
    assert hinted == [False] * 2 + [True] * 3, hinted
    record = next(r for r in Journal(tmp_path / "trajectories.jsonl").records if r["origin"] == "rationalized")
    assert record["question"] == inst.question and record["reward"] == 1.0

    leaky = scripted(f"Thought: The hint says {inst.answer}.\nAction: Finish[{inst.answer}]", "Thought: ok\nAction: Reflect[right]")
    out = tmp_path / "leak"
    journal = Journal(out / "trajectories.jsonl")
    journal.append({"id": inst.id, "instance_id": inst.id, "reward": 0.0})
    asyncio.run(synthesize_trajectories([inst], build_react_graph({"meta": leaky}), context, out, 1, rationalize=True))
    leaked = [r for r in Journal(out / "trajectories.jsonl").records if r.get("origin") == "rationalized"][0]
    assert leaked["hint_leak"] and leaked["reward"] == 0.0


def test_hinted_episode_must_find_its_answer_with_a_tool():
    base = {"id": "q1#r0", "instance_id": "q1", "sample": "r0", "status": "ok", "reward": 1.0, "origin": "rationalized",
            "answer": "Ida Brann", "reflections": [{"verdict": "right"}]}
    guessed = {**base, "trajectory": [{"action": "Finish", "argument": "Ida Brann", "observation": ""}]}
    found = {**base, "trajectory": [
        {"action": "Retrieve", "argument": "Velmora", "observation": "Velmora was founded in 1412 by Ida Brann."},
        {"action": "Finish", "argument": "Ida Brann", "observation": ""}]}
    kept, report = filter_trajectories([guessed])
    assert kept == [] and report["dropped"] == {"hinted answer not found by an information tool": 1}
    assert filter_trajectories([found])[0] == [found]
    # zero-shot episodes are judged by their reward alone
    assert filter_trajectories([{**guessed, "origin": "zero-shot", "id": "q1", "sample": 0}])[1]["kept"] == 1


def test_an_echoing_tool_does_not_count_as_finding_the_answer():
    # the 0.5B model's hinted retries "found" answers by typing them into the calculator
    base = {"id": "q1#r0", "instance_id": "q1", "sample": "r0", "status": "ok", "reward": 1.0, "origin": "rationalized",
            "answer": "1802", "reflections": [{"verdict": "right"}]}
    echo = {**base, "trajectory": [{"action": "Calculator", "argument": "1802", "observation": "1802"},
                                   {"action": "Finish", "argument": "1802", "observation": ""}]}
    named = {**base, "trajectory": [{"action": "Search", "argument": "lighthouse 1802",
                                     "observation": "[1] Velmora Lighthouse: built in 1802."},
                                    {"action": "Finish", "argument": "1802", "observation": ""}]}
    read = {**base, "trajectory": [{"action": "Retrieve", "argument": "Velmora Lighthouse",
                                    "observation": "The Velmora Lighthouse was built in 1802."},
                                   {"action": "Finish", "argument": "1802", "observation": ""}]}
    assert filter_trajectories([echo])[1]["dropped"] == {"hinted answer not found by an information tool": 1}
    assert filter_trajectories([named])[1]["kept"] == 0  # the answer was in the query it typed
    assert filter_trajectories([read])[0] == [read]


def test_a_last_thought_that_does_not_state_its_answer_is_dropped():
    # kept by reward alone, these taught the 0.5B's adapters to quote any sentence, then name an answer
    def rec(thought, answer="1831", **extra):
        return {"id": "q1", "instance_id": "q1", "sample": 0, "status": "ok", "reward": 1.0, "origin": "zero-shot",
                "answer": answer, "reflections": [], **extra,
                "trajectory": [{"action": "Retrieve", "argument": "salt kiln",
                                "observation": "The salt kiln was invented by Teodor Malm in 1831."},
                               {"action": "Finish", "argument": answer, "observation": "", "thought": thought}]}

    stated = rec("The salt kiln was invented by Teodor Malm in 1831. The question asks in what year, "
                 "so the answer is 1831.")
    unstated = rec("The first salt kiln still stands beside the bridge. The question asks in what year, "
                   "so the answer is 1831.")
    no_clause = rec("It was invented in 1831.")
    assert rationale_states_answer(stated) is True and filter_trajectories([stated])[0] == [stated]
    assert rationale_states_answer(unstated) is False
    assert filter_trajectories([unstated])[1]["dropped"] == {
        "last thought does not state the answer before concluding": 1}
    assert rationale_states_answer(no_clause) is True
    assert rationale_states_answer(rec("The answer is 1831.")) is False  # nothing before the conclusion
    assert rationale_states_answer(rec("Built in 18310 or so.")) is False  # whole words only
    # where the rule cannot apply, the record is judged by the other rules
    assert rationale_states_answer(rec("", answer="1831")) is None  # CodeAct: no thought at Finish
    assert rationale_states_answer(rec("Option B.", answer="B", choices=["a", "b"])) is None
    assert rationale_states_answer(rec("So the answer is B.", answer="B", scores={"acc": 1.0})) is None


@pytest.mark.parametrize(
    "question,answer,reason",
    [
        ("What is the name of the island that was created by the tide clock?", "Marek Solvi", None),
        ("Who founded the Quillhaven Observatory?", "1851", "a 'who' question answered with a number"),
        ("In what year was the Quillhaven Observatory founded?", "Marek Solvi",
         "a 'when' question answered without a year or date"),
        ("How many arches does the Saltmarch Bridge have?", "Oskar Vellin",
         "a 'how many' question answered without a number"),
        ("Where was Marek Solvi born?", "1751", "a 'where' question answered with a number"),
        ("How tall is the Velmora Lighthouse?", "1802", "a measure answered without its unit"),
        ("How tall is the Velmora Lighthouse?", "42 metres", None),
        ("Which town hosts the Lantern Festival?", "yes", "yes/no answer to an open question"),
        ("Is Velmora older than Saltmarch?", "yes", None),
        ("In what year was Velmora founded?", "1412", None),
        ("How many people live on the islands?", "About 214,000", None),
    ],
)
def test_answers_must_fit_the_question(question, answer, reason):
    from autoact.synth.self_instruct import answer_type_mismatch

    assert answer_type_mismatch(question, answer) == reason


def test_an_instance_whose_answer_is_not_in_its_paragraph_is_rejected():
    source = "Quillhaven Observatory was founded in 1851 by the astronomer Hanne Ostrom."
    assert reject_reason("Who founded the Quillhaven Observatory?", "Hanne Ostrom", source) is None
    assert reject_reason("Who founded the Quillhaven Observatory?", "Marek Solvi", source) == \
        "answer not in the source paragraphs"
    assert reject_reason("Who founded the Quillhaven Observatory?", "1851", source) == \
        "a 'who' question answered with a number"


def test_grounded_sources_never_support_an_evaluation_question(demo):
    import random

    from autoact.synth.self_instruct import linked_paragraphs, source_titles

    protected = demo.evaluation_titles()
    test_titles = {t for i in demo.split("test") for t in i.meta["supporting_titles"]}
    assert protected == test_titles and len(protected) > 10
    allowed = source_titles(demo)
    assert not set(allowed) & protected and len(allowed) + len(protected) == len(demo.corpus)
    rng = random.Random(0)
    for _ in range(300):
        titles = [t for t, _ in linked_paragraphs(demo, rng, linked=True)]
        assert not set(titles) & protected
    # HotpotQA files carry no split: every loaded question is an evaluation question
    hotpot = TaskInstance("h1", "Who wrote it?", "Ann", meta={"supporting_titles": ["A", "B"]})
    assert "split" not in hotpot.meta


def test_a_question_restating_an_evaluation_question_is_dropped(demo, tmp_path):
    from autoact.synth.self_instruct import restates_evaluation

    test = demo.split("test")[0]
    assert restates_evaluation(test.question, test.answer, demo.evaluation_questions()) == test.id
    assert restates_evaluation(test.question.replace("?", " exactly?"), "something else",
                               demo.evaluation_questions()) == test.id  # near-duplicate wording
    assert restates_evaluation("Who built the Saltmarch Bridge?", "Oskar Vellin", demo.evaluation_questions()) is None
    paragraph = demo.corpus.get(test.meta["supporting_titles"][0])
    # a model that restates a test question is refused, and the manifest's report names it
    reply = f"Question: {test.question}\nAnswer: {test.answer}"
    model = scripted(*[reply] * 8)
    config = SelfInstructConfig(n=1, k=1, grounded=False, max_fruitless_rounds=2)
    report = asyncio.run(SelfInstruct(demo, model, tmp_path, config).run(concurrency=1))
    assert report["instances"] == 0
    assert report["rejected_by_reason"]["restates an evaluation question"] >= 1
    assert report["separation"]["restated_evaluation_questions"][0]["id"] == test.id
    assert paragraph is not None


def test_task_questions_refuse_data_without_a_training_split(tmp_path):
    from autoact.synth.synthesis import SplitError, SynthesisConfig, training_questions

    data = tmp_path / "eval.jsonl"
    data.write_text(json.dumps({"question": "Who wrote it?", "answer": "Ann"}) + "\n")
    task = load_task("custom", data)
    with pytest.raises(SplitError, match="no training split"):
        training_questions(task, SynthesisConfig(task="custom", data=str(data), instances="task"))
    train = tmp_path / "train.jsonl"
    train.write_text(json.dumps({"question": "Who drew it?", "answer": "Bo"}) + "\n")
    chosen = training_questions(task, SynthesisConfig(task="custom", data=str(data), instances="task",
                                                      train_data=str(train)))
    assert [i.question for i in chosen] == ["Who drew it?"]
    demo_train = training_questions(load_task("demo"), SynthesisConfig(instances="task"))
    assert len(demo_train) == 45 and all(i.meta["split"] == "train" for i in demo_train)


def test_tool_choice_without_an_information_tool_is_augmented_and_tried(demo, tmp_path):
    model = scripted("Tools: Calculator, Python")
    tried = []

    async def trial(tools):  # the demo's seeds need retrieval: only a set that has it solves them
        tried.append(list(tools))
        solved = 3 if "Retrieve" in tools else 0
        return solved, [{"tools": tools}]

    record = asyncio.run(select_tools(demo, model, tmp_path, trial=trial))
    assert record["model_choice"] == ["Calculator", "Python"]
    assert "no information tool" in record["augmented"]
    assert set(record["selected"]) >= {"Retrieve", "Lookup", "Search"}
    assert tried == [record["trials"]["choice"]["tools"], list(demo.default_tools)]
    assert "kept after trial" in record["why"]

    # a choice that solves fewer seeds than the defaults is replaced by them
    model = scripted("Tools: Search")
    out = tmp_path / "second"

    async def search_is_worse(tools):
        return (1 if tools == ["Search"] else 3), []

    record = asyncio.run(select_tools(demo, model, out, trial=search_is_worse))
    assert record["selected"] == list(demo.default_tools) and "solved more seed questions" in record["why"]
    assert json.loads((out / "tools.json").read_text())["trials"]["choice"]["seeds_solved"] == 1


# ---- the spread of grounded questions ----------------------------------------------------------
@pytest.mark.parametrize(
    "question, answer, kind",
    [
        ("Who designed the Velmora Lighthouse?", "Oskar Vellin", "person"),
        ("After whom is Port Annick named?", "Annick Vey", "person"),
        ("In which town was the cartographer who sailed on the Morning Gull born?", "Fennick", "place"),
        ("Which town was the painter of Harbor at Dusk from?", "Quillhaven", "place"),
        ("In what year was the founder of the Royal Academy of Ostrelle born?", "1744", "year"),
        ("When did the Great Storm strike?", "3 October 1847", "year"),
        ("How deep is Lake Emberlin?", "112 metres", "number"),
        ("What is the area of Lumen Isle?", "38 square kilometres", "number"),
        ("What did Marek Solvi invent?", "the tide clock", "thing"),
        ("Are Eskerby and Mossgate on the same island?", "no", "yes/no"),
    ],
)
def test_question_kinds_follow_the_first_question_word(question, answer, kind):
    from autoact.synth.self_instruct import question_kind

    assert question_kind(question, answer) == kind


def test_a_bridge_question_needs_both_paragraphs():
    from autoact.synth.self_instruct import bridge_problem

    ship = ("Morning Gull", "The Morning Gull was a survey ship launched in 1798. The cartographer Ruben Asker sailed on her.")
    person = ("Ruben Asker", "Ruben Asker was a cartographer. He was born in Fennick in 1772.")
    q = "In which town was the cartographer who sailed on the Morning Gull born?"
    assert bridge_problem(q, "Fennick", ship, person) is None
    assert bridge_problem("In which town was Ruben Asker born?", "Fennick", ship, person) == \
        "names the second paragraph's subject"
    assert bridge_problem("In which town was the cartographer born?", "Fennick", ship, person) == \
        "does not name the first paragraph's subject"
    assert bridge_problem("In what year was the Morning Gull launched?", "1798", ship, person) == \
        "the first paragraph already answers it"


class ParagraphReader:
    """A fake meta-model that always asks for a year of the paragraphs it is shown:
    a model stuck on one kind of question, as the embedded one was. With two
    paragraphs it asks, naming ``bridge_names``'s choice, for a year only the second
    paragraph gives."""

    def __init__(self, bridge_names: str = "first") -> None:
        self.calls: list[list[dict]] = []
        self.bridge_names = bridge_names

    async def ainvoke(self, messages, **_):
        import re
        from types import SimpleNamespace

        self.calls.append(messages)
        await asyncio.sleep(0)  # a real call lets the other rounds of the batch start meanwhile
        shown = messages[-1]["content"].split("\n")[0]
        parts = re.findall(r"\[([^\]]+)\]\s*([^\[]+)", shown)
        (first, text1), second = parts[0], (parts[1] if len(parts) > 1 else None)
        if second is None:
            years = re.findall(r"\b1\d{3}\b", text1)
            reply = f"Question: In what year is {first} dated?\nAnswer: {years[0]}" if years else "no idea"
        else:
            years = [y for y in re.findall(r"\b1\d{3}\b", second[1]) if y not in text1]
            named = first if self.bridge_names == "first" else second[0]
            reply = f"Question: In what year was the one linked to {named} born?\nAnswer: {years[0]}" if years else "-"
        return SimpleNamespace(content=reply, usage_metadata={"output_tokens": 9})


def test_grounded_rounds_ask_for_the_scarcest_kind_and_cap_each_kind(demo, tmp_path):
    from autoact.synth.self_instruct import ANSWER_KINDS, question_kind

    model = ParagraphReader()
    config = SelfInstructConfig(n=6, k=1, grounded=True, linked_fraction=0.0, max_fruitless_rounds=6,
                                max_kind_share=0.35)
    report = asyncio.run(SelfInstruct(demo, model, tmp_path, config, seed=2).run(concurrency=1))
    # a model that only asks for years fills the year kind to its cap (ceil(0.35 * 6) = 3), no further
    assert report["kinds"]["year"] == 3 and report["instances"] == 3
    assert report["rejected_by_reason"]["too many 'year' questions"] >= 1
    assert {r["meta"]["kind"] for r in Journal(tmp_path / "instances.jsonl").records} == {"year"}
    requests = [call[-1]["content"].split("\n")[-1] for call in model.calls]
    assert set(requests) <= set(ANSWER_KINDS.values())
    # once a year is accepted, the rounds ask for the kinds still empty, never for years again
    asked = [next(k for k, v in ANSWER_KINDS.items() if v == r) for r in requests]
    first_year = asked.index("year") if "year" in asked else len(asked)
    assert "year" not in asked[first_year + 1:] and len(set(asked)) >= 4
    # the worked turn nearest the model's turn is of the kind the round asks for
    for call, kind in zip(model.calls, asked):
        demo_question = call[-2]["content"].split("\n")[0].removeprefix("Question: ")
        demo_answer = call[-2]["content"].split("\n")[1].removeprefix("Answer: ")
        assert question_kind(demo_question, demo_answer) == kind


def asked_kinds(model) -> list[str]:
    from autoact.synth.self_instruct import ANSWER_KINDS

    by_request = {v: k for k, v in ANSWER_KINDS.items()}
    return [by_request[call[-1]["content"].split("\n")[-1]] for call in model.calls]


def test_a_batch_of_rounds_spreads_over_the_kinds_and_a_kind_asked_in_vain_falls_back(demo, tmp_path):
    from autoact.synth.self_instruct import ANSWER_KINDS, MISSES_PER_ITEM

    model = ParagraphReader()  # answers a year whatever it is asked
    config = SelfInstructConfig(n=6, k=1, grounded=True, linked_fraction=0.0, max_fruitless_rounds=20)
    generator = SelfInstruct(demo, model, tmp_path, config, seed=3)
    report = asyncio.run(generator.run(concurrency=len(ANSWER_KINDS)))
    asked = asked_kinds(model)
    # the rounds of one batch start together: each takes a kind no other round is asking for
    assert sorted(asked[: len(ANSWER_KINDS)]) == sorted(ANSWER_KINDS)
    # no kind but year is ever found, so each is asked in vain, in turn, never one for ever
    misses = generator.kind_misses()
    assert report["kinds"]["year"] == 3 and sum(misses.values()) >= 16
    others = [misses[k] for k in ANSWER_KINDS if k != "year"]
    assert max(others) - min(others) <= len(ANSWER_KINDS)
    assert all(n >= MISSES_PER_ITEM for n in others)
    # misses are read from the round journal: a resumed run sees the same
    rounds = Journal(tmp_path / "self_instruct_rounds.jsonl").records
    assert all(r["asked_kind"] in ANSWER_KINDS for r in rounds)
    assert SelfInstruct(demo, model, tmp_path, config, seed=3).kind_misses() == misses


def test_linked_rounds_keep_only_bridge_questions(demo, tmp_path):
    config = SelfInstructConfig(n=2, k=1, grounded=True, linked_fraction=1.0, max_fruitless_rounds=4)
    naming_second = ParagraphReader(bridge_names="second")
    report = asyncio.run(SelfInstruct(demo, naming_second, tmp_path / "bad", config, seed=5).run(concurrency=1))
    assert report["instances"] == 0 and report["rejected_by_reason"].get("not a bridge question", 0) >= 1
    rejected = [x for r in Journal(tmp_path / "bad" / "self_instruct_rounds.jsonl").records for x in r["rejected"]]
    assert {x.get("why") for x in rejected if x["reason"] == "not a bridge question"} == \
        {"names the second paragraph's subject"}

    bridging = ParagraphReader(bridge_names="first")
    report = asyncio.run(SelfInstruct(demo, bridging, tmp_path / "ok", config, seed=5).run(concurrency=1))
    records = Journal(tmp_path / "ok" / "instances.jsonl").records
    assert report["bridge_questions"] == len(records) >= 1
    assert all(r["meta"]["bridge"] and len(r["meta"]["source_titles"]) == 2 for r in records)
    # the round shows a bridge turn last and asks for a two-step question
    assert bridging.calls[0][-1]["content"].split("\n")[-1].startswith("Ask a two-step question")
    assert bridging.calls[0][-3]["content"].split("\n")[-1].startswith("Ask a two-step question")


@pytest.mark.parametrize(
    "question, title, named",
    [
        ("What did Agnes Pell invent?", "Agnes Pell", True),
        ("What was Halvard Quist's best-known act?", "Halvard Quist", True),
        ("How many poems are in The Salt Hymns?", "The Salt Hymns", True),
        ("What was the name of the hospital?", "Petra Lusk", False),
        ("What was the name of the shipyard?", "Brindle Cove Shipyard", False),
    ],
)
def test_a_single_paragraph_question_must_name_its_subject(question, title, named):
    from autoact.synth.self_instruct import names_its_subject

    assert names_its_subject(question, title) is named


def test_a_question_that_names_nothing_is_rejected(demo, tmp_path):
    model = ParagraphReader()
    model_reply = model.ainvoke

    async def unnamed(messages, **kw):  # the fake's question, its subject's name left out
        reply = await model_reply(messages, **kw)
        shown = messages[-1]["content"].split("]")[0].removeprefix("Paragraph: [")
        reply.content = reply.content.replace(shown, "it")
        return reply

    model.ainvoke = unnamed
    config = SelfInstructConfig(n=2, k=1, grounded=True, linked_fraction=0.0, max_fruitless_rounds=3)
    report = asyncio.run(SelfInstruct(demo, model, tmp_path, config, seed=2).run(concurrency=1))
    assert report["instances"] == 0
    assert report["rejected_by_reason"]["does not name its paragraph's subject"] >= 1


def test_a_multiple_choice_episode_records_its_options_so_the_rationale_rule_skips_it():
    from autoact.synth.trajectories import episode_record

    question = TaskInstance("mc1", "Which is a mammal?", "B", choices=["trout", "whale"])
    state = {"trajectory": [{"thought": "So the answer is B.", "action": "Finish", "argument": "B", "observation": ""}],
             "answer": "B", "reward": 1.0, "score": {"acc": 1.0}}
    record = episode_record(question, state, ["Retrieve"], 1.0)
    assert record["choices"] == ["trout", "whale"]
    assert rationale_states_answer(record) is None
    assert filter_trajectories([record])[1]["kept"] == 1
    assert episode_record(TaskInstance("q", "Who?", "Ann"), state, [], 1.0)["choices"] is None
