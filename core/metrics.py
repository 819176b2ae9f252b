r"""Answer metrics: HotpotQA token F1 / exact match for open QA, accuracy for
multiple choice.

Open QA, default (official) scoring
-----------------------------------
By default the definitions are those of HotpotQA's official evaluation script
(``hotpot_evaluate_v1.py``), which extends SQuAD's:

* ``normalize_answer``, in this order: lower-case; delete every character of
  Python's ``string.punctuation`` (ASCII only: curly quotes, en/em dashes and
  the ellipsis are kept, and there is no Unicode normalisation); replace the
  whole words a/an/the (regex ``\b(a|an|the)\b``) by a space; collapse
  whitespace.
* F1: if either normalised side is "yes", "no" or "noanswer" and the two
  differ, F1 = precision = recall = 0 (no partial credit). Otherwise the
  normalised strings are split on whitespace and the common tokens are the
  multiset intersection; with no common token F1 = precision = recall = 0
  (so two answers that both normalise to "" get F1 0), else precision =
  common / #prediction tokens, recall = common / #gold tokens and
  F1 = 2PR / (P + R).
* EM: 1.0 iff the normalised prediction equals the normalised gold. Two answers
  that both normalise to "" therefore get EM 1.0 but F1 0.0; this is the
  official behaviour and is kept.

Project extensions
------------------
* Several gold aliases may be given; each score is the best over them (for
  ``qa_scores``, precision and recall come from the alias with the best F1).
* ``lenient=True`` (never the default) on ``f1_score`` / ``exact_match`` /
  ``qa_scores`` swaps in ``normalize_answer_lenient``, which first applies
  Unicode NFKC and also deletes the typographic punctuation ‘ ’ “ ” – — …;
  every other rule above stays the same. Lenient scores are not comparable
  with published HotpotQA numbers.
* Multiple choice maps an answer to an option with ``choice_index``, which
  compares text through ``normalize_answer_lenient``.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence

from rapidfuzz import fuzz

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_ASCII_PUNCT = frozenset(string.punctuation)
_LENIENT_PUNCT = _ASCII_PUNCT | {"‘", "’", "“", "”", "–", "—", "…"}
_STRICT = {"yes", "no", "noanswer"}
_ZERO = (0.0, 0.0, 0.0)

__all__ = [
    "normalize_answer",
    "normalize_answer_lenient",
    "contains_phrase",
    "f1_score",
    "exact_match",
    "qa_scores",
    "choice_index",
    "letter",
    "mc_scores",
    "accuracy",
    "mean",
]


def _normalize(text: object, punct: frozenset[str] | set[str]) -> str:
    s = str(text if text is not None else "").lower()
    s = "".join(ch for ch in s if ch not in punct)
    s = _ARTICLES.sub(" ", s)
    return " ".join(s.split())


def normalize_answer(text: object) -> str:
    """HotpotQA's official normalisation: lower-case, delete ASCII punctuation
    (``string.punctuation``), replace the articles a/an/the by a space, collapse
    whitespace. ``None`` counts as ""."""
    return _normalize(text, _ASCII_PUNCT)


def normalize_answer_lenient(text: object) -> str:
    """``normalize_answer`` after Unicode NFKC, also deleting ‘ ’ “ ” – — …
    (not the official rule; see the module docstring)."""
    return _normalize(unicodedata.normalize("NFKC", str(text if text is not None else "")), _LENIENT_PUNCT)


def contains_phrase(text: object, phrase: object, lenient: bool = False) -> bool:
    """Whether ``phrase`` occurs in ``text`` as whole words, both normalised
    (:func:`normalize_answer`, or the lenient rule); an empty phrase occurs nowhere."""
    normalize = _normalizer(lenient)
    needle = normalize(phrase)
    return bool(needle) and f" {needle} " in f" {normalize(text)} "


def _normalizer(lenient: bool):
    return normalize_answer_lenient if lenient else normalize_answer


def _golds(gold: str | Sequence[str]) -> list[str]:
    if isinstance(gold, str):
        return [gold]
    golds = [str(g) for g in gold]
    if not golds:
        raise ValueError("no gold answer given")
    return golds


def _f1_single(prediction: str, gold: str, lenient: bool = False) -> tuple[float, float, float]:
    """(F1, precision, recall) against one gold answer."""
    norm = _normalizer(lenient)
    pred_norm, gold_norm = norm(prediction), norm(gold)
    if pred_norm in _STRICT and pred_norm != gold_norm:
        return _ZERO
    if gold_norm in _STRICT and pred_norm != gold_norm:
        return _ZERO
    pred_tokens, gold_tokens = pred_norm.split(), gold_norm.split()
    common = Counter(pred_tokens) & Counter(gold_tokens)
    overlap = sum(common.values())
    if overlap == 0:  # also when both sides normalise to "" (official)
        return _ZERO
    precision = overlap / len(pred_tokens)
    recall = overlap / len(gold_tokens)
    return 2 * precision * recall / (precision + recall), precision, recall


def f1_score(prediction: str, gold: str | Sequence[str], *, lenient: bool = False) -> float:
    """HotpotQA token F1; the best over several gold aliases."""
    return max(_f1_single(prediction, g, lenient)[0] for g in _golds(gold))


def exact_match(prediction: str, gold: str | Sequence[str], *, lenient: bool = False) -> float:
    """1.0 when the normalised prediction equals a normalised gold answer."""
    norm = _normalizer(lenient)
    pred = norm(prediction)
    return float(any(pred == norm(g) for g in _golds(gold)))


def qa_scores(prediction: str, gold: str | Sequence[str], *, lenient: bool = False) -> dict[str, float]:
    """``{"reward", "f1", "em", "precision", "recall"}``; the reward is the F1."""
    best = max((_f1_single(prediction, g, lenient) for g in _golds(gold)), key=lambda t: t[0])
    f1, precision, recall = best
    return {
        "reward": f1,
        "f1": f1,
        "em": exact_match(prediction, gold, lenient=lenient),
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
    norm_choices = [normalize_answer_lenient(c) for c in choices]
    pred = normalize_answer_lenient(text)
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
