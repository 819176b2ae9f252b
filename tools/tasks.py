"""Tasks: question sets with their corpus, scoring and default tools.

``load_task(name, data=None, corpus=None)`` knows four kinds:

- ``demo``: the built-in fictional-archipelago task (``tools/demo/``);
- ``hotpotqa``: HotpotQA-format JSONL (default ``../shared/data/hotpotqa/{easy,medium}.jsonl``);
  the corpus is the ``context`` paragraphs of all loaded questions unless one is given;
- ``scienceqa``: ScienceQA-format JSON lists (default ``../shared/data/scienceqa/grade*.json``);
- ``custom``: a JSONL of ``{question, answer}`` (optional ``id``, ``choices``) plus a corpus.
"""

from __future__ import annotations

import ast
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from autoact.metrics import choice_index, letter, mc_scores, qa_scores
from autoact.io import read_json, read_jsonl
from autoact.tools.corpus import Corpus

__all__ = ["TaskInstance", "Task", "load_task", "TASK_NAMES", "options_line", "parse_options"]

TASK_NAMES = ("demo", "hotpotqa", "scienceqa", "custom")
RETRIEVAL_TOOLS = ["Retrieve", "Lookup", "Search"]

HOTPOTQA_DESCRIPTION = (
    "Multi-hop question answering over an encyclopedia-like corpus of titled paragraphs. "
    "Answering usually needs facts from two paragraphs: find the first entity, read it, "
    "then follow a bridge entity or compare two entities. Answers are short spans "
    "(a name, a date, a number, a place) or yes/no."
)
SCIENCEQA_DESCRIPTION = (
    "Multiple-choice science questions for school grades 1-8 (natural, social and language "
    "science). Each question lists its options; many come with an image, available as a "
    "caption and recognised text. Answer with the text of the correct option."
)
CUSTOM_DESCRIPTION = "Answer the user's questions, using the tools on the given corpus where needed."


@dataclass
class TaskInstance:
    """One question. ``answer`` is None for a question without gold (a chat question)."""

    id: str
    question: str
    answer: str | None
    choices: list[str] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def has_gold(self) -> bool:
        return self.answer is not None or "answer_index" in self.meta

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "question": self.question, "answer": self.answer,
                "choices": list(self.choices) if self.choices else None, "meta": dict(self.meta)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskInstance:
        if not isinstance(data, dict) or not str(data.get("question") or "").strip():
            raise ValueError("a task instance needs a non-empty 'question'")
        answer = data.get("answer")
        return cls(
            id=str(data.get("id") or ""),
            question=str(data["question"]),
            answer=None if answer is None else str(answer),
            choices=[str(c) for c in data["choices"]] if data.get("choices") else None,
            meta=dict(data.get("meta") or {}),
        )


@dataclass
class Task:
    name: str
    description: str
    instances: list[TaskInstance]
    corpus: Corpus
    default_tools: list[str]
    seeds: list[TaskInstance] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._by_id = {inst.id: inst for inst in self.instances}

    def __repr__(self) -> str:
        return f"Task({self.name!r}, {len(self.instances)} questions, {len(self.corpus)} paragraphs)"

    def get(self, instance_id: str) -> TaskInstance:
        try:
            return self._by_id[instance_id]
        except KeyError:
            raise KeyError(f"task {self.name} has no question with id {instance_id!r}") from None

    def split(self, name: str) -> list[TaskInstance]:
        """Questions whose ``meta["split"]`` is ``name`` (``train`` / ``test``)."""
        return [i for i in self.instances if i.meta.get("split") == name]

    def evaluation_questions(self) -> list[TaskInstance]:
        """The questions this task is evaluated on: every question not in the
        ``train`` split (HotpotQA files carry no split: all their questions are)."""
        return [i for i in self.instances if i.meta.get("split") != "train"]

    def evaluation_titles(self) -> set[str]:
        """Titles of the paragraphs that support an evaluation question. Synthesis
        never draws data from them (grounded self-instruct, worked examples); the
        agents may still retrieve them at tool time, as the paper's agents could
        search all of Wikipedia."""
        return {t for i in self.evaluation_questions() for t in i.meta.get("supporting_titles") or []}

    def score(self, prediction: str, instance: TaskInstance) -> dict[str, Any]:
        """``reward`` in [0, 1] plus ``f1``/``em`` (open QA) or ``acc`` (multiple choice)."""
        if not instance.has_gold:
            raise ValueError(f"question {instance.id!r} has no gold answer to score against")
        prediction = "" if prediction is None else str(prediction)
        if instance.choices:
            gold = instance.meta.get("answer_index")
            if gold is None:
                gold = choice_index(instance.answer, instance.choices)
            if gold is None:
                raise ValueError(f"question {instance.id!r}: gold {instance.answer!r} is none of its choices")
            return mc_scores(prediction, int(gold), instance.choices)
        return qa_scores(prediction, instance.answer)


# ---- helpers ---------------------------------------------------------------------------
_OPTION = re.compile(r"\(([A-Z])\)\s*(.*?)\s*(?=\([A-Z]\)\s|$)", re.S)


def options_line(choices: Sequence[str]) -> str:
    return "Options: " + " ".join(f"({letter(i)}) {c}" for i, c in enumerate(choices))


def parse_options(question: str) -> list[str]:
    """The choices of a ``... Options: (A) x (B) y`` question text."""
    _, sep, tail = question.rpartition("Options:")
    if not sep:
        return []
    return [m.group(2).strip() for m in _OPTION.finditer(tail.strip())]


def _as_paths(data: str | Path | Sequence[str | Path] | None) -> list[Path]:
    if data is None:
        return []
    if isinstance(data, (str, Path)):
        return [Path(data)]
    return [Path(d) for d in data]


def _expand(paths: list[Path], pattern: str) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            found = sorted(q for q in p.glob(pattern) if not q.name.startswith("seeds"))
            if not found:
                raise FileNotFoundError(f"no {pattern} files in {p}")
            out.extend(found)
        elif p.is_file():
            out.append(p)
        else:
            raise FileNotFoundError(f"data file not found: {p}")
    return out


def shared_data_dir() -> Path:
    """``../shared/data`` beside the repository (tools/ lives directly under it), or ``$AUTOACT_SHARED_DATA``."""
    named = os.environ.get("AUTOACT_SHARED_DATA")
    return Path(named) if named else Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def _default_files(folder: str, pattern: str) -> list[Path]:
    base = shared_data_dir() / folder
    files = sorted(base.glob(pattern))
    if not files:
        raise FileNotFoundError(
            f"no {folder} data found at {base} (pass --data PATH, or set AUTOACT_SHARED_DATA)"
        )
    return files


def _seed_records(folder: Path) -> list[dict[str, Any]]:
    path = folder / "seeds.json"
    if not path.is_file():
        return []
    data = read_json(path)
    if not isinstance(data, list):
        raise ValueError(f"{path}: seeds must be a JSON list")
    return [{k.lower(): v for k, v in row.items()} for row in data]


def _load_corpus(corpus: str | Path | Corpus | None) -> Corpus | None:
    return None if corpus is None else Corpus.load(corpus)


# ---- demo ------------------------------------------------------------------------------
def _demo_file(name: str) -> Path:
    return Path(str(resources.files("autoact.tools").joinpath("demo", name)))


def load_demo() -> Task:
    questions = read_jsonl(_demo_file("questions.jsonl"))
    instances = [
        TaskInstance(
            id=q["id"], question=q["question"], answer=q["answer"],
            meta={k: q[k] for k in ("type", "level", "supporting_titles", "split") if k in q},
        )
        for q in questions
    ]
    seeds = [
        TaskInstance(id=f"seed-{n}", question=s["question"], answer=s["answer"],
                     meta={"supporting_titles": s.get("supporting_titles", [])})
        for n, s in enumerate(read_json(_demo_file("seeds.json")), 1)
    ]
    return Task(
        name="demo",
        description=_demo_file("description.txt").read_text(encoding="utf-8").strip(),
        instances=instances,
        corpus=Corpus.from_jsonl(_demo_file("corpus.jsonl")),
        default_tools=list(RETRIEVAL_TOOLS),
        seeds=seeds,
    )


# ---- HotpotQA ------------------------------------------------------------------------------
def _hotpot_instance(rec: dict[str, Any], where: str) -> TaskInstance:
    for key in ("question", "answer"):
        if key not in rec:
            raise ValueError(f"{where}: a HotpotQA record needs {key!r}")
    facts = rec.get("supporting_facts") or []
    if isinstance(facts, dict):  # the HF dataset's column layout
        facts = list(zip(facts.get("title", []), facts.get("sent_id", [])))
    titles = list(dict.fromkeys(t for t, _ in facts))
    return TaskInstance(
        id=str(rec.get("id") or rec.get("_id") or ""),
        question=str(rec["question"]),
        answer=str(rec["answer"]),
        meta={
            "level": rec.get("level"),
            "type": rec.get("type"),
            "supporting_facts": [list(f) for f in facts],
            "supporting_titles": titles,
        },
    )


def _hf_rows(spec: str) -> list[dict[str, Any]]:
    """Rows of ``hf:DATASET[:CONFIG][:SPLIT]`` (needs the hub or its local cache)."""
    from datasets import load_dataset

    parts = spec[3:].split(":")
    config = parts[1] if len(parts) > 1 and parts[1] else None
    split = parts[2] if len(parts) > 2 and parts[2] else "validation"
    return [dict(r) for r in load_dataset(parts[0], config, split=split)]


def load_hotpotqa(data=None, corpus=None) -> Task:
    records: list[dict[str, Any]] = []
    if isinstance(data, str) and data.startswith("hf:"):
        records = _hf_rows(data)
        seed_dir = None
    else:
        files = _expand(_as_paths(data), "*.jsonl") if data is not None else _default_files("hotpotqa", "*.jsonl")
        for f in files:
            for n, rec in enumerate(read_jsonl(f), 1):
                rec.setdefault("_where", f"{f}:{n}")
                records.append(rec)
        seed_dir = files[0].parent
    instances = [_hotpot_instance(r, r.get("_where", "record")) for r in records]
    for n, inst in enumerate(instances):
        inst.id = inst.id or f"hotpotqa-{n}"
    seeds = [
        TaskInstance(id=f"seed-{n}", question=str(s["question"]), answer=str(s["answer"]))
        for n, s in enumerate(_seed_records(seed_dir) if seed_dir else [], 1)
    ]
    return Task(
        name="hotpotqa",
        description=HOTPOTQA_DESCRIPTION,
        instances=instances,
        corpus=_load_corpus(corpus) or Corpus.from_hotpotqa(records),
        default_tools=list(RETRIEVAL_TOOLS),
        seeds=seeds,
    )


# ---- ScienceQA ------------------------------------------------------------------------------
def parse_ocr(raw: Any) -> list[str]:
    """The recognised text pieces of ScienceQA's ``orc`` field (a Python-literal list
    of ``(box, text, confidence)`` tuples), in reading order as given."""
    if raw is None or raw == "no img":
        return []
    if isinstance(raw, str):
        try:
            raw = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            return [raw] if raw.strip() and raw.strip() != "[]" else []
    texts = []
    for item in raw or []:
        if isinstance(item, (list, tuple)) and len(item) >= 2 and isinstance(item[1], str):
            texts.append(item[1].strip())
        elif isinstance(item, str):
            texts.append(item.strip())
    return [t for t in texts if t]


def _scienceqa_instance(rec: dict[str, Any], where: str, source: str, n: int) -> TaskInstance:
    question = rec.get("Question") or rec.get("question")
    if not question:
        raise ValueError(f"{where}: a ScienceQA record needs 'Question'")
    choices = [str(c) for c in rec.get("choices") or parse_options(question)]
    if not choices:
        raise ValueError(f"{where}: no choices (neither 'choices' nor an 'Options:' line)")
    raw_answer = str(rec.get("Answer") if rec.get("Answer") is not None else rec.get("answer", ""))
    idx = choice_index(raw_answer, choices)
    if idx is None:
        raise ValueError(f"{where}: answer {raw_answer!r} names none of the choices {choices}")
    if "Options:" not in question:
        question = f"{question.rstrip()}\n{options_line(choices)}"
    metadata = rec.get("metadata") or {}
    caption = rec.get("caption")
    has_image = bool(metadata.get("has_image", caption not in (None, "", "no img")))
    return TaskInstance(
        id=str(rec.get("pid") or f"{source}-{n}"),
        question=question,
        answer=choices[idx],
        choices=choices,
        meta={
            "answer_index": idx,
            "answer_letter": letter(idx),
            "level": source,
            "has_image": has_image and caption not in (None, "", "no img"),
            "caption": None if caption in (None, "", "no img") else str(caption),
            "ocr": parse_ocr(rec.get("orc", rec.get("ocr"))),
            **{k: metadata[k] for k in ("grade", "subject", "topic", "category", "skill") if k in metadata},
        },
    )


def load_scienceqa(data=None, corpus=None) -> Task:
    files = _expand(_as_paths(data), "*.json") if data is not None else _default_files("scienceqa", "grade*.json")
    instances = []
    for f in files:
        rows = read_json(f)
        if not isinstance(rows, list):
            raise ValueError(f"{f}: a ScienceQA file must hold a JSON list of questions")
        instances += [_scienceqa_instance(r, f"{f}[{n}]", f.stem, n) for n, r in enumerate(rows)]
    seeds = [
        _scienceqa_instance({**s, "pid": f"seed-{n}"}, "seeds.json", "seed", n)
        for n, s in enumerate(_seed_records(files[0].parent), 1)
    ]
    loaded = _load_corpus(corpus)
    tools = (list(RETRIEVAL_TOOLS) if loaded else []) + ["Image2Text", "Calculator"]
    return Task(
        name="scienceqa",
        description=SCIENCEQA_DESCRIPTION,
        instances=instances,
        corpus=loaded or Corpus([], name="empty"),
        default_tools=tools,
        seeds=seeds,
    )


# ---- bring your own --------------------------------------------------------------------------
def load_custom(data=None, corpus=None, description: str | None = None) -> Task:
    paths = _as_paths(data)
    if not paths:
        raise ValueError("the custom task needs --data: a JSONL file of {question, answer} records")
    instances = []
    for f in _expand(paths, "*.jsonl"):
        for n, rec in enumerate(read_jsonl(f), 1):
            where = f"{f}:{n}"
            if not str(rec.get("question") or "").strip():
                raise ValueError(f"{where}: each record needs a non-empty 'question'")
            if "answer" not in rec:
                raise ValueError(f"{where}: each record needs an 'answer'")
            choices = [str(c) for c in rec["choices"]] if rec.get("choices") else None
            question = str(rec["question"])
            meta = {k: v for k, v in rec.items() if k not in ("id", "question", "answer", "choices")}
            answer = None if rec["answer"] is None else str(rec["answer"])
            if choices:
                idx = choice_index(answer or "", choices)
                if idx is None:
                    raise ValueError(f"{where}: answer {answer!r} names none of the choices {choices}")
                meta["answer_index"] = idx
                answer = choices[idx]
                if "Options:" not in question:
                    question = f"{question.rstrip()}\n{options_line(choices)}"
            instances.append(TaskInstance(str(rec.get("id") or f"{f.stem}-{n}"), question, answer, choices, meta))
    if not instances:
        raise ValueError(f"no questions in {', '.join(map(str, paths))}")
    loaded = _load_corpus(corpus)
    tools = (list(RETRIEVAL_TOOLS) if loaded else []) + ["Calculator"]
    return Task(
        name="custom",
        description=description or CUSTOM_DESCRIPTION,
        instances=instances,
        corpus=loaded or Corpus([], name="empty"),
        default_tools=tools,
        # Self-instruct needs a few examples: the first questions with an answer.
        seeds=[i for i in instances if i.has_gold and i.meta.get("split") != "test"][:3],
    )


def load_task(
    name: str,
    data: str | Path | Sequence[str | Path] | None = None,
    corpus: str | Path | Corpus | None = None,
) -> Task:
    """Load a task by name (``demo``, ``hotpotqa``, ``scienceqa`` or ``custom``)."""
    if name == "demo":
        if data is not None or corpus is not None:
            raise ValueError("the demo task brings its own questions and corpus; use the 'custom' task for yours")
        return load_demo()
    if name == "hotpotqa":
        return load_hotpotqa(data, corpus)
    if name == "scienceqa":
        return load_scienceqa(data, corpus)
    if name == "custom":
        return load_custom(data, corpus)
    raise ValueError(f"unknown task {name!r}; choose one of {', '.join(TASK_NAMES)}")
