"""Self-instruct: the meta-agent writes new task instances from a few seeds.

Rounds of ``k`` items: each round shows examples sampled from the seeds and what was
already generated, and parses what the model writes. Items are dropped when they
are malformed or duplicate (normalised question, or normalised question and answer,
already known). In **grounded** mode a round shows one or two linked paragraphs of
the corpus instead and keeps only answers that occur in them, recording the source
titles, so the questions are answerable with the offline tools.

Grounded rounds steer the *spread* of what is asked: left alone, a small model asks
"In what year…?" about almost every paragraph (57 of 60 questions in one measured
run), and agents trained on that answer a year to everything. Each single-paragraph
round therefore asks for the answer kind (:data:`ANSWER_KINDS`) that is furthest
behind, shows a worked turn of that kind, and no kind may hold more than
``max_kind_share`` of the instances. "Behind" counts the kind's accepted items, the
rounds already asking for it, and a quarter of an item for each round that asked for
it in vain: a kind the corpus rarely supports (counts, say) is asked for again and
again, but not by every round of a batch, and not for ever (measured: eight rounds at
once all asked for a number, none found one, and the run stopped at 20 of 60). A linked round asks for a **bridge**
question: it names the first paragraph's subject, and its answer is only in the
second paragraph, whose title it does not give away — otherwise the "two-hop"
question is answerable from one paragraph and teaches no second step.

Journals (resumable): ``RUN/self_instruct_rounds.jsonl`` (every round, with its raw
output and why items were rejected) and ``RUN/instances.jsonl`` (accepted items).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from autoact.concurrency import Progress
from autoact.metrics import contains_phrase, normalize_answer_lenient as normalize_answer
from autoact.prompts.meta import grounded_demonstrations, grounded_messages, self_instruct_messages
from autoact.synth.journal import Journal, stable_id
from autoact.tools import Task, TaskInstance, get_index

log = logging.getLogger(__name__)

INSTANCES_FILE = "instances.jsonl"
ROUNDS_FILE = "self_instruct_rounds.jsonl"

_ITEM = re.compile(
    r"(?:^|\n)\s*(?:\d+[.)]\s*)?(?:Question|Q)\s*[:：]\s*(?P<q>[^\n]+?)\s*\n+\s*(?:Answer|A)\s*[:：]\s*(?P<a>[^\n]+)",
    re.IGNORECASE,
)
MAX_ANSWER_WORDS = 12


#: Words that do not change what a question asks ("which" and "what" ask alike).
_FILLER = frozenset("a an the in of on at to for by is was are were did does do has had have".split())


def question_key(question: str) -> frozenset[str]:
    """What makes two questions the same for de-duplication: their words, normalized,
    without filler, "which" read as "what" ("In which year was X born?" = "In what year
    was X born?"); the question words themselves stay (who / when / where differ)."""
    words = normalize_answer(question).split()
    return frozenset("what" if w == "which" else w for w in words if w not in _FILLER)


@dataclass
class SelfInstructConfig:
    """Sizes and sampling of self-instruct (see the module docstring)."""

    n: int = 40
    k: int = 3
    grounded: bool = False
    #: None = 0.8 for plain rounds (diversity comes from sampling), 0.3 for grounded
    #: ones (diversity comes from the sampled paragraph; a small model drifts when hot)
    temperature: float | None = None
    max_tokens: int = 192
    #: stop after this many rounds in a row accept nothing (three batches of eight:
    #: with ~40 % of rounds accepting something, one batch in vain happens by chance)
    max_fruitless_rounds: int = 24
    examples_per_round: int = 3
    #: share of grounded rounds that show two linked paragraphs (bridge questions)
    linked_fraction: float = 0.25
    #: grounded: the most any one answer kind may hold, as a share of ``n``
    max_kind_share: float = 0.35

    @property
    def sampling(self) -> dict:
        temperature = self.temperature if self.temperature is not None else (0.3 if self.grounded else 0.8)
        stop = ["\n\n", "\nParagraph"] if self.grounded else []
        return {"temperature": temperature, "max_tokens": self.max_tokens, "stop": stop}


def parse_items(text: str) -> list[tuple[str, str]]:
    """``Question: … / Answer: …`` pairs in model output (numbering and Q:/A: tolerated)."""
    items = []
    for match in _ITEM.finditer(text or ""):
        question = match.group("q").strip().strip('"')
        answer = match.group("a").strip().strip('"').rstrip(".")
        items.append((question, answer))
    return items


_NUMBER = re.compile(r"\d|\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|"
                     r"forty|fifty|hundred|thousand|million|dozen)\b", re.IGNORECASE)
_MONTH = re.compile(r"\b(january|february|march|april|may|june|july|august|september|october|november|december|"
                    r"century|spring|summer|autumn|winter)\b", re.IGNORECASE)
_YES_NO_QUESTION = re.compile(r"^(is|are|was|were|do|does|did|can|could|has|have|had|will|would|should)\b", re.IGNORECASE)


def answer_type_mismatch(question: str, answer: str) -> str | None:
    """Why the answer cannot be an answer to the question's kind, or None. Rules
    from the question word: who -> not a number; when / what year -> a year or
    date; how many / how much -> a number; how tall / deep / long… -> a number with
    its unit; where / which place -> not a number;
    yes or no only for a question that starts with a verb."""
    q = " ".join(question.lower().split())
    a = answer.strip().lower()
    has_number = bool(_NUMBER.search(a))
    numeric_only = bool(re.fullmatch(r"[\d\s.,%-]+", a))
    if a in ("yes", "no"):
        return None if _YES_NO_QUESTION.match(q) else "yes/no answer to an open question"
    if re.search(r"\bwho(m|se)?\b", q) and numeric_only:
        return "a 'who' question answered with a number"
    if re.search(r"\b(when|what year|which year|in what year|in which year|what date)\b", q):
        if not (has_number or _MONTH.search(a)):
            return "a 'when' question answered without a year or date"
    if re.search(r"\bhow (many|much|long|tall|high|deep|wide|far|old)\b", q) and not has_number:
        return "a 'how many' question answered without a number"
    if re.search(r"\bhow (long|tall|high|deep|wide|far|large|big)\b", q) and numeric_only:
        return "a measure answered without its unit"
    if re.search(r"\b(where|in which (town|city|country|island|sea|village|region|place))\b", q) and numeric_only:
        return "a 'where' question answered with a number"
    return None


#: Rounds that asked for a kind in vain count as one accepted item of it (see target_kind).
MISSES_PER_ITEM = 4

#: The answer kinds grounded self-instruct spreads its questions over, with the request
#: a round shows for each (yes/no and comparisons are left out: their answers are not
#: spans of the paragraph, so the grounding check cannot verify them).
ANSWER_KINDS: dict[str, str] = {
    "person": "Ask who: the answer is a person's name.",
    "year": "Ask when: the answer is a year or a date.",
    "place": "Ask where: the answer is a town, an island or another place.",
    "number": "Ask how many, how tall or how large: the answer is a number with its unit.",
    "thing": "Ask what someone or something made, wrote, built, invented or is known for, naming them: "
             "the answer is the name of that thing.",
}

_PLACE_QUESTION = re.compile(
    r"\bwhere\b|\b(in|on|of|from|at|near|to) (which|what) (town|city|country|island|isle|sea|village|region|place|"
    r"harbou?r|port|coast|lake|river)\b|^(which|what) (town|city|country|island|isle|sea|village|region|place)\b")


_KIND_QUESTION = {
    "person": re.compile(r"\bwho(m|se)?\b"),
    "year": re.compile(r"\b(when|what year|which year|what date|which date|what century)\b"),
    "place": _PLACE_QUESTION,
    "number": re.compile(r"\bhow (many|much|long|tall|high|deep|wide|far|old|large|big)\b"),
}


def question_kind(question: str, answer: str) -> str:
    """Which of :data:`ANSWER_KINDS` (or ``"yes/no"``) a question and answer are: the
    question's first interrogative decides ("In which town was the cartographer who
    sailed…" asks for a place, not a person), the answer's shape otherwise."""
    q = " ".join(question.lower().split())
    if answer.strip().lower() in ("yes", "no"):
        return "yes/no"
    found = [(m.start(), kind) for kind, pattern in _KIND_QUESTION.items() if (m := pattern.search(q))]
    if found:
        return min(found)[1]
    return "number" if _NUMBER.search(answer) else "thing"


def bridge_problem(question: str, answer: str, first: tuple[str, str], second: tuple[str, str]) -> str | None:
    """Why a question about two linked paragraphs (``first`` mentions ``second``; both
    (title, text)) is not a bridge question, or None. A bridge question names the
    first paragraph's subject, does not name the second's, and its answer is in the
    second paragraph only — so it needs both retrievals."""
    if contains_phrase(question, second[0], lenient=True):
        return "names the second paragraph's subject"
    if not contains_phrase(question, first[0], lenient=True):
        return "does not name the first paragraph's subject"
    if contains_phrase(first[1], answer, lenient=True):
        return "the first paragraph already answers it"
    return None


def names_its_subject(question: str, title: str) -> bool:
    """Whether a question names the paragraph it was written from ("What was the name
    of the hospital?" does not: no tool call can find which hospital is meant)."""
    return f" {normalize_answer(title)}" in f" {normalize_answer(question)}"


def question_overlap(a: str, b: str) -> float:
    """Share of words in common (Jaccard) of two normalised questions."""
    x, y = set(normalize_answer(a).split()), set(normalize_answer(b).split())
    return len(x & y) / len(x | y) if x and y else 0.0


#: A synthesized question this close to an evaluation question is dropped; with the
#: same answer, a looser overlap already counts as a restatement.
NEAR_DUPLICATE_OVERLAP = 0.8
SAME_ANSWER_OVERLAP = 0.5


def restates_evaluation(question: str, answer: str, evaluation: Sequence[TaskInstance]) -> str | None:
    """The id of an evaluation question that ``question`` restates, or None."""
    norm_answer = normalize_answer(answer)
    for inst in evaluation:
        overlap = question_overlap(question, inst.question)
        same = bool(inst.answer) and normalize_answer(inst.answer) == norm_answer
        if overlap >= NEAR_DUPLICATE_OVERLAP or (same and overlap >= SAME_ANSWER_OVERLAP):
            return inst.id
    return None


def reject_reason(question: str, answer: str, source_text: str | None = None) -> str | None:
    """Why an item is malformed (None when it is acceptable)."""
    if len(question) < 10 or len(question.split()) < 3:
        return "question too short"
    if not answer:
        return "empty answer"
    if len(answer.split()) > MAX_ANSWER_WORDS:
        return "answer too long"
    if len(answer.split()) > 4 and re.search(r"\b(is|was|are|were)\b", answer):
        return "answer is a sentence"
    norm_q, norm_a = normalize_answer(question), normalize_answer(answer)
    if not norm_a:
        return "empty answer"
    if norm_a == norm_q or (len(norm_a) > 3 and f" {norm_a} " in f" {norm_q} "):
        return "answer given in the question"
    if source_text is not None and f" {norm_a} " not in f" {normalize_answer(source_text)} ":
        return "answer not in the source paragraphs"
    return answer_type_mismatch(question, answer)


def source_titles(task: Task) -> list[str]:
    """The corpus titles grounded self-instruct may write from: every paragraph but
    those that support an evaluation question (``Task.evaluation_titles``)."""
    protected = task.evaluation_titles()
    return [t for t in task.corpus.titles if t not in protected]


def linked_paragraphs(task: Task, rng: random.Random, linked: bool = True,
                      allowed: Sequence[str] | None = None) -> list[tuple[str, str]]:
    """A paragraph and, with ``linked`` and where one exists, a paragraph whose title
    it mentions, both among the ``allowed`` titles (default: :func:`source_titles`)."""
    corpus = task.corpus
    if len(corpus) == 0:
        raise ValueError(f"grounded self-instruct needs a corpus; task {task.name} has none")
    allowed = list(source_titles(task) if allowed is None else allowed)
    if not allowed:
        raise ValueError(
            f"grounded self-instruct: every paragraph of task {task.name} supports an evaluation question; "
            "give a corpus with other paragraphs"
        )
    first = corpus.get(allowed[rng.randrange(len(allowed))])
    allowed_set = set(allowed)
    mentioned = [t for t in allowed if t != first.title and t in first.text and t in allowed_set]
    chosen = [first]
    if mentioned and linked:
        chosen.append(corpus.get(rng.choice(sorted(mentioned))))
    return [(p.title, p.text) for p in chosen]


def bridge_request(first: str, second: str) -> str:
    """What a linked round asks for (see :func:`bridge_problem`)."""
    return (f"Ask a two-step question: name {first}, and ask for a fact that only the paragraph about "
            f"{second} gives, without naming {second}.")


@dataclass(frozen=True)
class Demonstration:
    """A worked grounded turn: the paragraphs shown, the question and answer written,
    and for a bridge question the (first, second) titles."""

    paragraphs: tuple[tuple[str, str], ...]
    question: str
    answer: str
    bridge: tuple[str, str] | None = None

    @property
    def kind(self) -> str:
        return question_kind(self.question, self.answer)

    def turn(self) -> tuple[str, str, str, str]:
        """(paragraphs, question, answer, request) as :func:`grounded_messages` shows it."""
        request = bridge_request(*self.bridge) if self.bridge else ANSWER_KINDS.get(self.kind, "")
        text = " ".join(f"[{title}] {body}" for title, body in self.paragraphs)
        return text, self.question, self.answer, request


@functools.cache
def _generic_demonstrations() -> tuple[Demonstration, ...]:
    """The generic worked turns of ``prompts/self_instruct_grounded_example.yaml``, read once."""
    demos = []
    for d in grounded_demonstrations():
        parts = re.findall(r"\[([^\]]+)\]\s*([^\[]+)", d["paragraph"])
        paragraphs = tuple((title.strip(), body.strip()) for title, body in parts)
        bridge = (paragraphs[0][0], paragraphs[1][0]) if len(paragraphs) == 2 else None
        demos.append(Demonstration(paragraphs, d["question"], str(d["answer"]), bridge))
    return tuple(demos)


class SelfInstruct:
    def __init__(self, task: Task, model: Any, run_dir: Path, config: SelfInstructConfig, seed: int = 0) -> None:
        if len(task.seeds) < 2:
            raise ValueError(f"self-instruct needs at least 2 seed examples; task {task.name} has {len(task.seeds)}")
        self.task, self.model, self.config, self.seed = task, model, config, seed
        self.allowed_titles = source_titles(task) if config.grounded else []
        self.evaluation = task.evaluation_questions()
        self.rounds = Journal(Path(run_dir) / ROUNDS_FILE)
        self.instances = Journal(Path(run_dir) / INSTANCES_FILE)
        self.seen_questions = {question_key(s.question) for s in task.seeds}
        self.seen_questions |= {question_key(r["question"]) for r in self.instances.records}
        self._lock = asyncio.Lock()
        self._asking: dict[str, int] = {}  # answer kind -> rounds asking for it now
        self.excluded: list[dict[str, str]] = []
        self._seed_demos: list[Demonstration] | None = None

    def examples(self, rng: random.Random) -> list[tuple[str, str]]:
        pool = [(s.question, s.answer) for s in self.task.seeds if s.answer]
        generated = [(r["question"], r["answer"]) for r in self.instances.records]
        n_seed = min(len(pool), max(1, self.config.examples_per_round - 1))
        chosen = rng.sample(pool, n_seed)
        if generated:
            chosen += rng.sample(generated, min(len(generated), self.config.examples_per_round - n_seed))
        rng.shuffle(chosen)
        return chosen

    def seed_sources(self, seed: TaskInstance) -> list[Any]:
        """The corpus paragraphs a seed was written from: its supporting titles (all of
        them, so a two-paragraph seed is a bridge demonstration), else the best search
        hit for its question that contains its answer."""
        titles = seed.meta.get("supporting_titles") or seed.meta.get("source_titles") or []
        if titles:
            known = [p for p in map(self.task.corpus.get, titles) if p is not None]
            return known if len(known) == len(titles) else known[:1]

        # a paragraph about the seed's question that states its answer; a paragraph that
        # merely contains the answer word would make a misleading demonstration
        answer = f" {normalize_answer(seed.answer)} "
        asked = set(normalize_answer(seed.question).split())
        for hit in get_index(self.task.corpus).search(seed.question, k=5):
            paragraph = getattr(hit, "paragraph", hit)
            about = set(normalize_answer(paragraph.title).split()) <= asked
            if about and answer in f" {normalize_answer(paragraph.text)} ":
                return [paragraph]
        return []

    def _demonstration(self, paragraphs: Sequence[Any], question: str, answer: str) -> Demonstration:
        pairs = tuple((p.title, p.text) for p in paragraphs)
        bridge = None
        if len(pairs) == 2 and bridge_problem(question, answer, pairs[0], pairs[1]) is None:
            bridge = (pairs[0][0], pairs[1][0])
        return Demonstration(pairs, question, answer, bridge)

    def demonstration_pool(self) -> list[Demonstration]:
        """The task's own worked turns: its seeds (from their paragraphs) and the items
        accepted so far, none from a paragraph that supports an evaluation question."""
        if self._seed_demos is None:
            self._seed_demos = []
            protected = self.task.evaluation_titles()
            for seed in self.task.seeds:
                paragraphs = self.seed_sources(seed) if seed.answer else []
                if paragraphs and not any(p.title in protected for p in paragraphs):
                    self._seed_demos.append(self._demonstration(paragraphs, seed.question, seed.answer))
        pool = list(self._seed_demos)
        for r in self.instances.records:
            titles = r["meta"].get("source_titles") or []
            paragraphs = [self.task.corpus.get(t) for t in titles]
            if paragraphs and all(p is not None for p in paragraphs):
                pool.append(self._demonstration(paragraphs, r["question"], r["answer"]))
        return pool

    def demonstrations(self, rng: random.Random, kind: str | None, bridge: bool) -> list[Demonstration]:
        """Two worked turns; the last (nearest the model's turn) is what this round asks
        for — a bridge question, or a question of ``kind`` — taken from the task's own
        turns where it has one, else from the generic ones."""
        pool, generic = self.demonstration_pool(), _generic_demonstrations()

        def wanted(d: Demonstration) -> bool:
            return d.bridge is not None if bridge else (d.bridge is None and d.kind == kind)

        matching = [d for d in pool if wanted(d)] or [d for d in generic if wanted(d)]
        last = rng.choice(matching) if matching else None
        others = [d for d in pool if d is not last and d.bridge is None and (last is None or d.kind != last.kind)]
        others = others or [d for d in generic if d.bridge is None and d is not last and (last is None or d.kind != last.kind)]
        chosen = [rng.choice(others)] if others else []
        return chosen + ([last] if last is not None else [])

    def kind_counts(self) -> dict[str, int]:
        counts = {kind: 0 for kind in ANSWER_KINDS}
        for r in self.instances.records:
            kind = r["meta"].get("kind") or question_kind(r["question"], r["answer"])
            counts[kind] = counts.get(kind, 0) + 1
        return counts

    @property
    def kind_cap(self) -> int:
        return max(1, math.ceil(self.config.max_kind_share * self.config.n))

    def kind_misses(self) -> dict[str, int]:
        """Per kind, the finished rounds that asked for it and accepted no item of it."""
        misses = {kind: 0 for kind in ANSWER_KINDS}
        got = {r["id"]: r["meta"].get("kind") for r in self.instances.records}
        for r in self.rounds.records:
            asked = r.get("asked_kind")
            if asked in misses and not any(got.get(i) == asked for i in r.get("accepted") or []):
                misses[asked] += 1
        return misses

    def target_kind(self, rng: random.Random) -> str:
        """The answer kind furthest behind (ties broken at random): fewest accepted
        items plus rounds now asking for it plus a quarter per round that asked in vain."""
        counts, misses = self.kind_counts(), self.kind_misses()
        behind = {k: counts[k] + self._asking.get(k, 0) + misses[k] / MISSES_PER_ITEM for k in ANSWER_KINDS}
        least = min(behind.values())
        return rng.choice([k for k in ANSWER_KINDS if behind[k] == least])

    async def run_round(self, index: int) -> dict[str, Any]:
        round_id = f"round-{index:05d}"
        rng = random.Random(f"{self.seed}:{round_id}")
        sources: list[tuple[str, str]] = []
        kind: str | None = None
        if self.config.grounded:
            sources = linked_paragraphs(self.task, rng, rng.random() < self.config.linked_fraction,
                                        self.allowed_titles)
            bridge = len(sources) == 2
            kind = None if bridge else self.target_kind(rng)
            if kind is not None:
                self._asking[kind] = self._asking.get(kind, 0) + 1
        try:
            return await self._ask(index, round_id, rng, sources, kind)
        finally:
            if kind is not None:
                self._asking[kind] -= 1

    async def _ask(self, index: int, round_id: str, rng: random.Random, sources: list[tuple[str, str]],
                   kind: str | None) -> dict[str, Any]:
        if self.config.grounded:
            bridge = len(sources) == 2
            request = bridge_request(sources[0][0], sources[1][0]) if bridge else ANSWER_KINDS[kind]
            demos = [d.turn() for d in self.demonstrations(rng, kind, bridge)]
            messages = grounded_messages(self.task.description, sources, demos, request)
        else:
            messages = self_instruct_messages(self.task.description, self.examples(rng), self.config.k)
        reply = await self.model.ainvoke(messages, seed=self.seed * 100_003 + index)
        raw = str(reply.content)
        tokens = (reply.usage_metadata or {}).get("output_tokens", 0)
        source_text = " ".join(text for _, text in sources) if sources else None
        accepted, rejected = [], []
        async with self._lock:
            for question, answer in parse_items(raw):
                reason = reject_reason(question, answer, source_text)
                key = question_key(question)
                if reason is None and key in self.seen_questions:
                    reason = "duplicate"
                why = None
                if reason is None and len(sources) == 1 and not names_its_subject(question, sources[0][0]):
                    reason = "does not name its paragraph's subject"
                if reason is None and len(sources) == 2:
                    why = bridge_problem(question, answer, sources[0], sources[1])
                    reason = "not a bridge question" if why else None
                answer_kind = question_kind(question, answer)
                if reason is None and self.config.grounded and self.kind_counts().get(answer_kind, 0) >= self.kind_cap:
                    reason = f"too many '{answer_kind}' questions"
                if reason is None:
                    restated = restates_evaluation(question, answer, self.evaluation)
                    if restated:
                        reason = "restates an evaluation question"
                        self.excluded.append({"question": question, "answer": answer, "evaluation_id": restated})
                if reason:
                    rejected.append({"question": question, "answer": answer, "reason": reason,
                                     **({"why": why} if why else {})})
                    continue
                if len(self.instances) >= self.config.n:
                    rejected.append({"question": question, "answer": answer, "reason": "enough instances"})
                    continue
                self.seen_questions.add(key)
                record = {
                    "id": "si-" + stable_id(normalize_answer(question), normalize_answer(answer)),
                    "question": question,
                    "answer": answer,
                    "meta": {"round": round_id, "source_titles": [t for t, _ in sources], "grounded": bool(sources),
                             "kind": answer_kind, "asked_kind": kind, "bridge": len(sources) == 2},
                }
                self.instances.append(record)
                accepted.append(record["id"])
            if not raw.strip():
                rejected.append({"reason": "empty output"})
            elif not accepted and not rejected:
                rejected.append({"reason": "no Question/Answer item in the output"})
            self.rounds.append({"id": round_id, "raw": raw, "accepted": accepted, "rejected": rejected, "tokens": tokens,
                                **({"asked_kind": kind} if kind else {})})
        return {"accepted": len(accepted), "tokens": tokens}

    async def run(self, concurrency: int) -> dict[str, Any]:
        """Generate until ``n`` instances or too many fruitless rounds in a row."""
        cfg = self.config
        progress = Progress(total=cfg.n, desc="self-instruct")
        progress.bar.update(len(self.instances))
        next_round = len(self.rounds)
        fruitless = 0
        errors: list[str] = []
        try:
            while len(self.instances) < cfg.n and fruitless < cfg.max_fruitless_rounds:
                batch = range(next_round, next_round + concurrency)
                next_round += concurrency
                before = len(self.instances)
                results = await asyncio.gather(*(self.run_round(i) for i in batch), return_exceptions=True)
                for result in results:
                    if isinstance(result, BaseException):
                        errors.append(f"{type(result).__name__}: {result}")
                        fruitless += 1
                    elif result["accepted"]:
                        fruitless = 0
                        progress.tokens += result["tokens"]
                    else:
                        fruitless += 1
                        progress.tokens += result["tokens"]
                progress.bar.update(len(self.instances) - before)
                if errors and len(errors) >= cfg.max_fruitless_rounds:
                    raise RuntimeError(f"self-instruct: {len(errors)} rounds failed; last error: {errors[-1]}")
        finally:
            progress.close()
        stopped = "enough" if len(self.instances) >= cfg.n else "fruitless"
        if stopped == "fruitless":
            log.warning(
                "self-instruct stopped after %d fruitless rounds in a row with %d of %d instances",
                cfg.max_fruitless_rounds, len(self.instances), cfg.n,
            )
        rejected: dict[str, int] = {}
        for r in self.rounds.records:
            for item in r.get("rejected") or []:
                rejected[item.get("reason", "?")] = rejected.get(item.get("reason", "?"), 0) + 1
        return {
            "instances": len(self.instances),
            "rounds": len(self.rounds),
            "stopped": stopped,
            "rejected_by_reason": dict(sorted(rejected.items(), key=lambda kv: -kv[1])),
            "separation": {
                "evaluation_questions": len(self.evaluation),
                "source_paragraphs": len(self.allowed_titles) if self.config.grounded else None,
                "excluded_paragraphs": len(self.task.corpus) - len(self.allowed_titles) if self.config.grounded else 0,
                "restated_evaluation_questions": [
                    {"id": e["evaluation_id"], "question": e["question"]} for e in self.excluded
                ],
            },
            "kinds": self.kind_counts(),
            "bridge_questions": sum(1 for r in self.instances.records if r["meta"].get("bridge")),
            "errors": errors[-5:],
            "completion_tokens": sum(r.get("tokens", 0) for r in self.rounds.records),
        }


def load_instances(run_dir: Path) -> list[TaskInstance]:
    journal = Journal(Path(run_dir) / INSTANCES_FILE)
    return [TaskInstance.from_dict(r) for r in journal.records]
