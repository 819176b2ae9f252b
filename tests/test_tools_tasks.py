"""Task loaders: the built-in demo task, bring-your-own, and the HotpotQA and
ScienceQA files in ../shared/data (skipped with a message where absent)."""

import json
from collections import Counter

import pytest

from autoact.tools.corpus import Corpus
from autoact.tools.library import tool_library
from autoact.tools.tasks import TaskInstance, load_task, options_line, parse_ocr, parse_options


# ---- demo ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo():
    return load_task("demo")


def test_demo_shape(demo):
    assert 60 <= len(demo.corpus) <= 80
    assert 55 <= len(demo.instances) <= 70
    assert len(demo.split("test")) == 20 and len(demo.split("train")) == len(demo.instances) - 20
    types = Counter(i.meta["type"] for i in demo.instances)
    assert types["bridge"] + types["comparison"] >= 12 and types["single-hop"] >= 40
    assert 2 <= len(demo.seeds) <= 3 and all(s.answer for s in demo.seeds)
    assert demo.description and "Ostrelle" in demo.description
    assert len({i.id for i in demo.instances}) == len(demo.instances)
    seed_questions = {s.question for s in demo.seeds}
    assert not seed_questions & {i.question for i in demo.instances}


def test_demo_single_hop_answers_are_in_the_first_retrieved_sentence(demo, tmp_path):
    """Retrieve[entity] -> read the first sentence -> Finish[answer] must be feasible."""
    tools = tool_library(demo, home=tmp_path)
    for inst in demo.instances:
        for title in inst.meta["supporting_titles"]:
            assert demo.corpus.get(title) is not None, (inst.id, title)
        if inst.meta["type"] == "single-hop":
            title = inst.meta["supporting_titles"][0]
            observation = tools["Retrieve"].invoke(title)
            first_sentence = demo.corpus.get(title).sentences[0]
            assert observation.startswith(first_sentence) and inst.answer in first_sentence, inst.id
        assert demo.score(inst.answer, inst)["em"] == 1.0


def test_demo_takes_no_overrides():
    with pytest.raises(ValueError, match="custom"):
        load_task("demo", data="x.jsonl")


def test_unknown_task():
    with pytest.raises(ValueError, match="unknown task"):
        load_task("trivia")


# ---- custom ----------------------------------------------------------------------------------
@pytest.fixture
def custom_files(tmp_path):
    data = tmp_path / "questions.jsonl"
    rows = [
        {"question": "Who built the Saltmarch Bridge?", "answer": "Oskar Vellin"},
        {"id": "mc1", "question": "Which is an island?", "answer": "B", "choices": ["Velmora", "Varn Island"]},
        {"question": "Is Velmora a capital?", "answer": "yes", "split": "test"},
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(json.dumps({"title": "Saltmarch Bridge", "text": "It was built by Oskar Vellin."}) + "\n")
    return data, corpus


def test_custom_task(custom_files):
    data, corpus = custom_files
    task = load_task("custom", data=data, corpus=corpus)
    assert [i.id for i in task.instances] == ["questions-1", "mc1", "questions-3"]
    mc = task.get("mc1")
    assert mc.choices == ["Velmora", "Varn Island"] and mc.answer == "Varn Island"
    assert mc.question.endswith("Options: (A) Velmora (B) Varn Island")
    assert task.score("(B)", mc)["acc"] == 1.0 and task.score("Velmora", mc)["acc"] == 0.0
    assert task.score("no", task.get("questions-3"))["f1"] == 0.0
    assert task.instances[2].meta["split"] == "test"
    assert task.default_tools == ["Retrieve", "Lookup", "Search", "Calculator"]
    assert len(task.corpus) == 1 and [s.id for s in task.seeds] == ["questions-1", "mc1"]


def test_custom_without_corpus_and_bad_input(tmp_path, custom_files):
    data, _ = custom_files
    task = load_task("custom", data=data)
    assert len(task.corpus) == 0 and task.default_tools == ["Calculator"]
    with pytest.raises(ValueError, match="needs --data"):
        load_task("custom")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"question": "q"}) + "\n")
    with pytest.raises(ValueError, match="'answer'"):
        load_task("custom", data=bad)
    bad.write_text(json.dumps({"question": "q", "answer": "Z", "choices": ["a", "b"]}) + "\n")
    with pytest.raises(ValueError, match="none of the choices"):
        load_task("custom", data=bad)
    with pytest.raises(FileNotFoundError):
        load_task("custom", data=tmp_path / "missing.jsonl")


def test_instance_round_trip_and_scoring_without_gold(demo):
    inst = TaskInstance("x", "q?", None, None, {"k": 1})
    assert TaskInstance(**inst.to_dict()) == inst == TaskInstance.from_dict(inst.to_dict())
    with pytest.raises(ValueError, match="no gold"):
        demo.score("a", inst)


def test_option_helpers():
    assert parse_options("Which?\nOptions: (A) West Virginia (B) Louisiana (C) a (b) c") == [
        "West Virginia", "Louisiana", "a (b) c"
    ]
    assert options_line(["x", "y"]) == "Options: (A) x (B) y"
    assert parse_ocr("no img") == [] and parse_ocr("[]") == []
    assert parse_ocr("[([[1, 2], [3, 4]], 'Oklahoma', 0.7), ([[5, 6]], 'Ohio', 0.9)]") == ["Oklahoma", "Ohio"]


# ---- shared benchmark data -------------------------------------------------------------------
@pytest.mark.shared_data
def test_hotpotqa_loader(shared_data):
    task = load_task("hotpotqa")
    assert len(task.instances) == 200
    assert Counter(i.meta["level"] for i in task.instances) == {"easy": 100, "medium": 100}
    assert set(Counter(i.meta["type"] for i in task.instances)) == {"bridge", "comparison"}
    assert len(task.corpus) == 1968  # unique context paragraphs of both files
    for inst in task.instances:
        assert inst.id and inst.question and inst.answer
        for title in inst.meta["supporting_titles"]:
            assert task.corpus.get(title) is not None
        assert task.score(inst.answer, inst) ["em"] == 1.0
    assert [s.answer for s in task.seeds] == ["Manhattan", "yes"]
    easy = load_task("hotpotqa", data=shared_data / "hotpotqa" / "easy.jsonl")
    assert len(easy.instances) == 100 and len(easy.corpus) < len(task.corpus)


@pytest.mark.shared_data
def test_hotpotqa_metric_on_known_pairs(shared_data):
    task = load_task("hotpotqa", data=shared_data / "hotpotqa" / "easy.jsonl")
    badr = next(i for i in task.instances if i.answer == "Badr Hari")
    assert task.score("Badr Hari", badr) == {"reward": 1.0, "f1": 1.0, "em": 1.0, "precision": 1.0, "recall": 1.0}
    assert task.score("Hari", badr)["f1"] == pytest.approx(2 / 3)
    yes_no = [i for i in task.instances if i.answer in ("yes", "no")]
    assert yes_no, "the easy file has yes/no comparison questions"
    for inst in yes_no:
        other = "no" if inst.answer == "yes" else "yes"
        assert task.score(other, inst)["f1"] == 0.0
        assert task.score(f"{inst.answer}, because of the dates", inst)["f1"] == 0.0


@pytest.mark.shared_data
def test_scienceqa_loader_and_metric(shared_data):
    task = load_task("scienceqa")
    assert len(task.instances) == 240
    assert Counter(i.meta["level"] for i in task.instances) == {"grade1-4": 120, "grade5-8": 120}
    with_image = [i for i in task.instances if i.meta["has_image"]]
    assert with_image and len(with_image) < 240
    for inst in task.instances:
        assert "Options:" in inst.question and 2 <= len(inst.choices) <= 5
        idx = inst.meta["answer_index"]
        assert inst.answer == inst.choices[idx]
        assert task.score(inst.meta["answer_letter"], inst)["acc"] == 1.0
        assert task.score(inst.answer, inst)["acc"] == 1.0
        wrong = (idx + 1) % len(inst.choices)
        if inst.choices[wrong] != inst.answer:
            assert task.score(chr(65 + wrong), inst)["acc"] == 0.0
    delaware = task.get("5890")
    assert delaware.answer == "Dover" and task.score("(B)", delaware)["acc"] == 1.0
    assert [s.answer for s in task.seeds] == [
        "West Virginia",
        "Do ping pong balls travel farther when launched from a 30° angle compared to a 45° angle?",
    ]
    assert task.default_tools == ["Image2Text", "Calculator"] and len(task.corpus) == 0


@pytest.mark.shared_data
def test_scienceqa_image2text_reads_caption_and_ocr(shared_data):
    from autoact.tools.env import TaskEnv

    task = load_task("scienceqa")
    env = TaskEnv(task, ["Image2Text"])
    with_ocr = next(i for i in task.instances if i.meta["ocr"])
    env.reset(with_ocr)
    observation = env.step("Image2Text[image]").observation
    assert observation.startswith(f"Caption: {with_ocr.meta['caption'].rstrip('. ')}.")
    assert with_ocr.meta["ocr"][0] in observation
    no_image = next(i for i in task.instances if not i.meta["has_image"])
    env.reset(no_image)
    assert env.step("Image2Text[image]").observation == "This question has no image."


def test_missing_shared_data_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("AUTOACT_SHARED_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="--data"):
        load_task("hotpotqa")


def test_corpus_argument_replaces_the_contexts(tmp_path):
    data = tmp_path / "q.jsonl"
    data.write_text(json.dumps({"id": "1", "question": "q?", "answer": "a", "context": [["T", ["s."]]]}) + "\n")
    corpus = tmp_path / "c.jsonl"
    corpus.write_text(json.dumps({"title": "Other", "text": "Other text."}) + "\n")
    assert load_task("hotpotqa", data=data).corpus.titles == ["T"]
    assert load_task("hotpotqa", data=data, corpus=corpus).corpus.titles == ["Other"]
    assert isinstance(load_task("hotpotqa", data=[data, data]).corpus, Corpus)
