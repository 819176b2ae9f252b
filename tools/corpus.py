"""The local corpus: paragraph records ``{title, sentences}`` and title matching.

A corpus replaces Wikipedia for ``Retrieve``/``Lookup`` and web search for
``Search``. Paragraphs keep their sentences so that ``Lookup`` can step through
them. Sources: a JSONL file (``{"title", "sentences"}`` or ``{"title", "text"}``
records), HotpotQA ``context`` fields, or a Hugging Face dataset (online users).
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rapidfuzz import fuzz, process

from autoact.io import atomic_write_jsonl, iter_json_lines

__all__ = ["Paragraph", "TitleMatch", "Corpus", "split_sentences", "fold"]

# A sentence ends at . ! or ? followed by whitespace and an upper-case letter,
# a digit or an opening quote; good enough for paragraphs given as plain text.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'“(A-Z0-9])")
_PARENTHETICAL = re.compile(r"\s*\([^)]*\)\s*$")
_ARTICLE = re.compile(r"^(?:the|a|an)\s+", re.IGNORECASE)

#: Minimum rapidfuzz ratio (0-100) for a fuzzy title hit.
FUZZY_THRESHOLD = 85.0


def split_sentences(text: str) -> list[str]:
    text = " ".join(str(text).split())
    return [s for s in _SENTENCE_END.split(text) if s] if text else []


def fold(text: str) -> str:
    """Case-, accent- and whitespace-insensitive key for title matching."""
    decomposed = unicodedata.normalize("NFKD", str(text))
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(stripped.casefold().replace("_", " ").split())


def _base_key(title: str) -> str:
    """A title's key without a trailing "(…)" qualifier and a leading article."""
    return fold(_ARTICLE.sub("", _PARENTHETICAL.sub("", " ".join(str(title).split()))))


@dataclass(frozen=True)
class Paragraph:
    title: str
    sentences: tuple[str, ...]

    @property
    def text(self) -> str:
        return " ".join(self.sentences)

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "sentences": list(self.sentences)}

    @classmethod
    def from_record(cls, record: dict[str, Any], where: str = "record") -> Paragraph:
        if not isinstance(record, dict):
            raise ValueError(f"{where}: a corpus record must be an object, got {type(record).__name__}")
        title = str(record.get("title") or "").strip()
        if not title:
            raise ValueError(f"{where}: a corpus record needs a non-empty 'title'")
        if record.get("sentences") is not None:
            sentences = record["sentences"]
            if isinstance(sentences, str) or not isinstance(sentences, Sequence):
                raise ValueError(f"{where}: 'sentences' must be a list of strings")
            clean = [" ".join(str(s).split()) for s in sentences]
        elif record.get("text") is not None:
            clean = split_sentences(record["text"])
        else:
            raise ValueError(f"{where}: a corpus record needs 'sentences' or 'text'")
        clean = [s for s in clean if s]
        if not clean:
            raise ValueError(f"{where}: paragraph {title!r} has no text")
        return cls(title, tuple(clean))


@dataclass(frozen=True)
class TitleMatch:
    paragraph: Paragraph
    how: str  # "exact" | "casefold" | "base-title" | "fuzzy"
    score: float = 100.0


class Corpus:
    """An ordered set of paragraphs, unique by title (the first one wins)."""

    def __init__(self, paragraphs: Iterable[Paragraph], name: str = "corpus"):
        self.name = name
        self.paragraphs: list[Paragraph] = []
        self._by_title: dict[str, int] = {}
        self.duplicates = 0
        for p in paragraphs:
            if p.title in self._by_title:
                self.duplicates += 1
                continue
            self._by_title[p.title] = len(self.paragraphs)
            self.paragraphs.append(p)
        self._by_fold: dict[str, int] = {}
        self._by_base: dict[str, int] = {}
        self._folded_titles = [fold(p.title) for p in self.paragraphs]
        for i, p in enumerate(self.paragraphs):
            self._by_fold.setdefault(self._folded_titles[i], i)
            # "Mercury (planet)" is also reachable as "Mercury", and "The Salt Hymns" as
            # "Salt Hymns", unless a page of that exact name exists (find() tries it first);
            # find() drops the entity's own article too, so "The Beatles" finds "Beatles".
            self._by_base.setdefault(_base_key(p.title), i)
        self._fingerprint: str | None = None

    # ---- container -------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.paragraphs)

    def __iter__(self) -> Iterator[Paragraph]:
        return iter(self.paragraphs)

    def __getitem__(self, i: int) -> Paragraph:
        return self.paragraphs[i]

    def __repr__(self) -> str:
        return f"Corpus({self.name!r}, {len(self)} paragraphs)"

    @property
    def titles(self) -> list[str]:
        return [p.title for p in self.paragraphs]

    def get(self, title: str) -> Paragraph | None:
        i = self._by_title.get(title)
        return None if i is None else self.paragraphs[i]

    @property
    def fingerprint(self) -> str:
        """A hash of the content; indexes are cached under it."""
        if self._fingerprint is None:
            h = hashlib.sha256()
            for p in self.paragraphs:
                h.update(json.dumps([p.title, list(p.sentences)], ensure_ascii=False).encode())
                h.update(b"\n")
            self._fingerprint = h.hexdigest()[:20]
        return self._fingerprint

    # ---- title matching -----------------------------------------------------------
    def find(self, entity: str, threshold: float = FUZZY_THRESHOLD) -> TitleMatch | None:
        """Exact title, then case/accent-insensitive, then without a trailing
        "(…)" qualifier or a leading article (the/a/an), then the closest fuzzy title
        at or above ``threshold``."""
        entity = " ".join(str(entity).split())
        if not entity or not self.paragraphs:
            return None
        i = self._by_title.get(entity)
        if i is not None:
            return TitleMatch(self.paragraphs[i], "exact")
        key = fold(entity)
        i = self._by_fold.get(key)
        if i is not None:
            return TitleMatch(self.paragraphs[i], "casefold")
        i = self._by_base.get(fold(_ARTICLE.sub("", entity)))  # the entity keeps its own qualifier
        if i is not None:
            return TitleMatch(self.paragraphs[i], "base-title")
        best = process.extractOne(key, self._folded_titles, scorer=fuzz.ratio, score_cutoff=threshold)
        if best is not None:
            _, score, i = best
            return TitleMatch(self.paragraphs[i], "fuzzy", float(score))
        return None

    def similar_titles(self, entity: str, k: int = 5) -> list[str]:
        """The k titles closest to ``entity`` (for "Could not find … Similar: …")."""
        if not self.paragraphs:
            return []
        hits = process.extract(fold(entity), self._folded_titles, scorer=fuzz.WRatio, limit=k)
        return [self.paragraphs[i].title for _, _, i in hits]

    # ---- loading -----------------------------------------------------------------
    @classmethod
    def from_records(cls, records: Iterable[dict[str, Any]], name: str = "corpus") -> Corpus:
        return cls((Paragraph.from_record(r, f"{name} record {n}") for n, r in enumerate(records, 1)), name)

    @classmethod
    def from_jsonl(cls, path: str | Path) -> Corpus:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"corpus file not found: {path}")
        paragraphs = [Paragraph.from_record(record, f"{path}:{n}") for n, record in iter_json_lines(path)]
        if not paragraphs:
            raise ValueError(f"{path}: the corpus file holds no paragraphs")
        return cls(paragraphs, name=path.stem)

    @classmethod
    def from_hotpotqa(cls, questions: Iterable[dict[str, Any]], name: str = "hotpotqa") -> Corpus:
        """The paragraphs of the ``context`` fields ([title, [sentences]] pairs)."""

        def paragraphs() -> Iterator[Paragraph]:
            for q in questions:
                context = q.get("context") or []
                if isinstance(context, dict):  # the HF dataset's layout: parallel columns
                    context = zip(context.get("title", []), context.get("sentences", []))
                for title, sentences in context:
                    clean = tuple(s for s in (" ".join(str(x).split()) for x in sentences) if s)
                    if title and clean:
                        yield Paragraph(str(title), clean)

        return cls(paragraphs(), name=name)

    @classmethod
    def from_hf(
        cls,
        dataset: str,
        config: str | None = None,
        split: str = "train",
        title_field: str = "title",
        text_field: str = "text",
    ) -> Corpus:
        """Load paragraphs from a Hugging Face dataset (needs the hub or its cache)."""
        from datasets import load_dataset

        ds = load_dataset(dataset, config, split=split)
        missing = {title_field, text_field} - set(ds.column_names)
        if missing:
            raise ValueError(f"dataset {dataset} has no column(s) {sorted(missing)}; columns: {ds.column_names}")

        def records() -> Iterator[dict[str, Any]]:
            for row in ds:
                body = row[text_field]
                key = "sentences" if isinstance(body, list) else "text"
                yield {"title": row[title_field], key: body}

        return cls.from_records(records(), name=dataset.replace("/", "__"))

    @classmethod
    def load(cls, source: str | Path | Corpus) -> Corpus:
        """A corpus from a JSONL path, or ``hf:DATASET[:CONFIG][:SPLIT]``."""
        if isinstance(source, Corpus):
            return source
        text = str(source)
        if text.startswith("hf:"):
            parts = text[3:].split(":")
            dataset = parts[0]
            config = parts[1] or None if len(parts) > 1 else None
            split = parts[2] if len(parts) > 2 and parts[2] else "train"
            return cls.from_hf(dataset, config, split)
        return cls.from_jsonl(text)

    def to_jsonl(self, path: str | Path) -> Path:
        """Write the corpus as JSONL (atomically)."""
        atomic_write_jsonl(Path(path), (p.to_dict() for p in self.paragraphs))
        return Path(path)
