"""Answer metrics: SQuAD-style token F1 / exact match for open QA, accuracy for
multiple choice.

Normalisation follows the SQuAD/HotpotQA evaluation scripts: lowercase, drop
punctuation and the articles a/an/the, collapse whitespace. As in HotpotQA's
scorer, yes/no answers are compared strictly: when either side normalises to
"yes" or "no" (or "noanswer") and the two differ, F1 is 0 rather than partial
credit for overlapping tokens.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence

from rapidfuzz import fuzz

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = set(string.punctuation) | {"‘", "’", "“", "”", "–", "—", "…"}
_STRICT = {"yes", "no", "noanswer"}

__all__ = [
    "normalize_answer",
    "f1_score",
    "exact_match",
    "qa_scores",
    "choice_index",
    "letter",
    "mc_scores",
    "accuracy",
    "mean",
]


def normalize_answer(text: object) -> str:
    """Lowercase, strip punctuation and articles, collapse whitespace."""
    s = unicodedata.normalize("NFKC", str(text if text is not None else "")).lower()
    s = "".join(ch for ch in s if ch not in _PUNCT)
    s = _ARTICLES.sub(" ", s)
    return " ".join(s.split())


def _golds(gold: str | Sequence[str]) -> list[str]:
    if isinstance(gold, str):
        return [gold]
    golds = [str(g) for g in gold]
    if not golds:
        raise ValueError("no gold answer given")
    return golds


def _f1_single(prediction: str, gold: str) -> tuple[float, float, float]:
    pred_norm, gold_norm = normalize_answer(prediction), normalize_answer(gold)
    if (pred_norm in _STRICT or gold_norm in _STRICT) and pred_norm != gold_norm:
        return 0.0, 0.0, 0.0
    pred_tokens, gold_tokens = pred_norm.split(), gold_norm.split()
    if not pred_tokens or not gold_tokens:
        same = float(pred_tokens == gold_tokens)
        return same, same, same
    common = Counter(pred_tokens) & Counter(gold_tokens)
    overlap = sum(common.values())
    if overlap == 0:
        return 0.0, 0.0, 0.0
    precision = overlap / len(pred_tokens)
    recall = overlap / len(gold_tokens)
    return 2 * precision * recall / (precision + recall), precision, recall


def f1_score(prediction: str, gold: str | Sequence[str]) -> float:
    """Token F1 after normalisation; the best over several gold aliases."""
    return max(_f1_single(prediction, g)[0] for g in _golds(gold))


def exact_match(prediction: str, gold: str | Sequence[str]) -> float:
    """1.0 when the normalised prediction equals a normalised gold answer."""
    pred = normalize_answer(prediction)
    return float(any(pred == normalize_answer(g) for g in _golds(gold)))


def qa_scores(prediction: str, gold: str | Sequence[str]) -> dict[str, float]:
    """``{"reward", "f1", "em", "precision", "recall"}``; the reward is the F1."""
    best = max((_f1_single(prediction, g) for g in _golds(gold)), key=lambda t: t[0])
    f1, precision, recall = best
    return {
        "reward": f1,
        "f1": f1,
        "em": exact_match(prediction, gold),
        "precision": precision,
        "recall": recall,
    }


# ---- multiple choice -----------------------------------------------------------
_LETTER_ONLY = re.compile(r"^\(?\s*([A-Za-z])\s*\)?\s*[.):]?$")
_LETTER_PREFIX = re.compile(r"^\(?([A-Z])(?:\)|\.|:|\s*\))\s*(.+)$", re.S)
_ANSWER_IS = re.compile(r"(?i:answer|option|choice)\s*(?i:is|:)?\s*\(?([A-Z])\)?(?![A-Za-z])")
_PAREN_LETTER = re.compile(r"\(([A-Z])\)")


def letter(index: int) -> str:
    """0 -> "A", 1 -> "B", …"""
    return chr(ord("A") + index)


def _letter_index(ch: str, n: int) -> int | None:
    idx = ord(ch.upper()) - ord("A")
    return idx if 0 <= idx < n else None


def _contains_words(haystack: str, needle: str) -> bool:
    return bool(needle) and re.search(rf"(?:^| ){re.escape(needle)}(?: |$)", haystack) is not None


def choice_index(prediction: str, choices: Sequence[str]) -> int | None:
    """Map an answer to the index of a choice, or None when it names none.

    Accepted, in order: a bare letter ("B", "(B)", "B.", "b"), a letter prefix
    ("B. Dover", "(B) Dover"), the option text (literal, then normalised), a phrase such as
    "the answer is (B)", then containment of exactly one option's text (the
    longest wins when one option contains another), then a close fuzzy match.
    """
    n = len(choices)
    if n == 0:
        return None
    text = str(prediction or "").strip()
    if not text:
        return None
    m = _LETTER_ONLY.match(text)
    if m:
        return _letter_index(m.group(1), n)
    m = _LETTER_PREFIX.match(text)
    if m:
        idx = _letter_index(m.group(1), n)
        if idx is not None:
            return idx
    # Options can differ only in case or punctuation ("dear Reggie," / "Dear Reggie,"):
    # the literal text decides before normalisation does.
    literal = [i for i, c in enumerate(choices) if str(c).strip() == text]
    if literal:
        return literal[0]
    norm_choices = [normalize_answer(c) for c in choices]
    pred = normalize_answer(text)
    exact = [i for i, c in enumerate(norm_choices) if c == pred]
    if exact:
        return exact[0]
    m = _ANSWER_IS.search(text)
    if m:
        idx = _letter_index(m.group(1), n)
        if idx is not None:
            return idx
    letters = {m.group(1) for m in _PAREN_LETTER.finditer(text)}
    if len(letters) == 1:
        idx = _letter_index(letters.pop(), n)
        if idx is not None:
            return idx
    contained = [i for i, c in enumerate(norm_choices) if _contains_words(pred, c)]
    if contained:
        longest = max(len(norm_choices[i]) for i in contained)
        best = [i for i in contained if len(norm_choices[i]) == longest]
        if len(best) == 1:
            return best[0]
    inside = [i for i, c in enumerate(norm_choices) if _contains_words(c, pred)]
    if len(inside) == 1:
        return inside[0]
    scores = [fuzz.ratio(pred, c) for c in norm_choices]
    best_score = max(scores)
    if best_score >= 80 and scores.count(best_score) == 1:
        return scores.index(best_score)
    return None


def mc_scores(prediction: str, gold_index: int, choices: Sequence[str]) -> dict[str, float | int | None]:
    """``{"reward", "acc", "choice"}`` where choice is the mapped index (or None)."""
    if not 0 <= gold_index < len(choices):
        raise ValueError(f"gold index {gold_index} is outside the {len(choices)} choices")
    idx = choice_index(prediction, choices)
    acc = float(idx == gold_index)
    return {"reward": acc, "acc": acc, "choice": idx}


def mean(values: Iterable[float]) -> float:
    values = list(values)
    return sum(values) / len(values) if values else 0.0


def accuracy(predictions: Sequence[int | None], golds: Sequence[int]) -> float:
    """Fraction of predicted choice indices equal to the gold indices."""
    if len(predictions) != len(golds):
        raise ValueError(f"{len(predictions)} predictions for {len(golds)} gold answers")
    return mean(float(p == g) for p, g in zip(predictions, golds))
