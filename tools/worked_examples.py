"""Worked examples in the task's own shape, built from its seed questions.

A base model imitates the examples in its prompt closely: shown a generic
three-step example, the small models copied its first thought at every step. So
the transcript prompts show episodes made from the task's seeds where they can be
made: the seed's supporting paragraph is retrieved with the real Retrieve tool, and
the thoughts quote the sentence that leads on (a bridge entity) or that states the
answer. One multi-hop and one one-hop example at most (the one-hop last: it is the
usual shape of a question). A seed whose paragraphs support an evaluation question
is never used (its observation would show a test answer), nor one whose answer the
paragraph does not state (yes/no comparisons). Where no seed qualifies, the
generic examples of ``prompts/examples.yaml`` are used.

The last thought names what the question asks before the answer ("The question asks
in which town, so the answer is Fennick."): with one year example last, the 0.5B
meta-agent answered a year to 10 of 36 unsolved non-year questions ("In which town was
the kelp press invented?" → 1856), the year its paragraph gave.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

from autoact.metrics import contains_phrase
from autoact.prompts.builders import DEFAULT_OBS_CHARS, FINISH, default_examples, truncate
from autoact.tools.library import tool_library
from autoact.tools.tasks import Task, TaskInstance

_SENTENCE = re.compile(r"(?<=[.!?])\s+")
# What a question asks: its opening question phrase ("in which town", "who built",
# "how many poems", "in what year", "what"), read from its first words.
_PREPOSITIONS = {"in", "on", "at", "by", "for", "from", "of", "to", "with"}
_AUXILIARIES = {"did", "does", "do", "was", "were", "is", "are", "has", "have", "had", "can", "could", "will"}


def _sentence_with(text: str, phrase: str) -> str | None:
    for sentence in _SENTENCE.split(text):
        if contains_phrase(sentence, phrase):
            return sentence.strip()
    return None


def answer_clause(question: str, answer: str) -> str:
    """"The question asks <what>, so the answer is <answer>." (plain "So the answer is …"
    when the question does not open with a question phrase)."""
    asks = question_phrase(question)
    return f"The question asks {asks}, so the answer is {answer}." if asks else f"So the answer is {answer}."


def question_phrase(question: str) -> str | None:
    """The question's opening phrase, lower-cased: the question word with what it
    asks for where the question says it ("in which town", "how many poems", "who
    built"); None when the question does not open with a question word."""
    words = re.findall(r"[\w'-]+", question.lower())[:5]
    if words and words[0] in _PREPOSITIONS:
        phrase, words = [words[0]], words[1:]
    else:
        phrase = []
    if not words:
        return None
    head, rest = words[0], words[1:]
    if head in ("which", "what", "whose"):
        taken = rest[:1] if rest and rest[0] not in _AUXILIARIES else []
    elif head == "how":
        taken = rest[:2] if rest[:1] in (["many"], ["much"]) else rest[:1]
    elif head == "who":
        taken = rest[:1] if rest and rest[0] not in _AUXILIARIES else []
    elif head in ("when", "where", "whom"):
        taken = []
    else:
        return None
    return " ".join(phrase + [head] + taken)


def seed_episode(seed: TaskInstance, retrieve: Any) -> dict | None:
    """The seed as a worked episode (Retrieve each supporting title in turn, then
    Finish), or None when it cannot be shown faithfully."""
    titles = list(seed.meta.get("supporting_titles") or [])
    if not titles or not seed.answer or len(titles) > 2:
        return None
    steps: list[dict[str, str]] = []
    thought = f"The question is about {titles[0]}. I will retrieve its paragraph."
    for n, title in enumerate(titles):
        observation = retrieve.act(title)
        if observation.startswith("Could not find"):
            return None
        steps.append({"thought": thought, "action": "Retrieve", "argument": title,
                      "observation": truncate(observation, DEFAULT_OBS_CHARS)})
        if n + 1 < len(titles):  # a bridge: the sentence that names the next entity
            bridge = _sentence_with(observation, titles[n + 1])
            if bridge is None:
                return None
            thought = f"{bridge} Now I need {titles[n + 1]}."
    stated = _sentence_with(steps[-1]["observation"], seed.answer)
    if stated is None:
        return None
    steps.append({"thought": f"{stated} {answer_clause(seed.question, seed.answer)}", "action": FINISH,
                  "argument": seed.answer, "observation": ""})
    return {
        "name": f"seed:{seed.id}",
        "shape": "multi-hop" if len(titles) > 1 else "one-hop",
        "question": seed.question,
        "steps": steps,
        "reflection": {"thought": f"The observation states that the answer is {seed.answer}, so it is supported.",
                       "verdict": "right"},
    }


def task_examples(task: Task, tool_names: Sequence[str]) -> list[dict]:
    """Up to two worked examples for ``task`` with these tools (see the module doc)."""
    fallback = default_examples(tool_names)
    seeds, corpus = getattr(task, "seeds", None), getattr(task, "corpus", None)
    if "Retrieve" not in tool_names or not seeds or corpus is None or not len(corpus):
        return fallback
    protected = task.evaluation_titles()
    retrieve = tool_library(task)["Retrieve"]
    by_shape: dict[str, dict] = {}
    for seed in seeds:
        if set(seed.meta.get("supporting_titles") or []) & protected:
            continue
        episode = seed_episode(seed, retrieve)
        if episode is not None:
            by_shape.setdefault(episode["shape"], episode)
    chosen = [by_shape[s] for s in ("multi-hop", "one-hop") if s in by_shape]
    if not chosen:
        return fallback
    if len(chosen) == 1:  # pair it with the generic example of the other shape
        other = [e for e in fallback if e.get("shape") != chosen[0]["shape"]]
        chosen = (other[:1] + chosen) if chosen[0]["shape"] == "one-hop" else (chosen + other[:1])
    return chosen


__all__ = ["answer_clause", "question_phrase", "seed_episode", "task_examples"]
