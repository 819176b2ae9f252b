"""Corpus records, loading and title matching (exact, case, qualifier, fuzzy, miss)."""

import json

import pytest

from autoact.tools.corpus import Corpus, Paragraph, split_sentences

RECORDS = [
    {"title": "Velmora", "sentences": ["Velmora is a harbour town.", "It was founded in 1412."]},
    {"title": "Mercury (planet)", "text": "Mercury is the smallest planet. It is closest to the Sun."},
    {"title": "Mercury (element)", "text": "Mercury is a liquid metal."},
    {"title": "Ida Brann", "text": "Ida Brann was a navigator."},
    {"title": "Café Lumen", "text": "Café Lumen is a café."},
]


@pytest.fixture
def corpus():
    return Corpus.from_records(RECORDS, name="small")


def test_sentences_are_kept(corpus):
    assert corpus.get("Velmora").sentences == ("Velmora is a harbour town.", "It was founded in 1412.")
    assert corpus.get("Mercury (planet)").sentences == ("Mercury is the smallest planet.", "It is closest to the Sun.")
    assert split_sentences("It rained.  Then it stopped! Was it 3 days? \"Yes.\"") == [
        "It rained.", "Then it stopped!", "Was it 3 days?", '"Yes."'
    ]


def test_exact_then_casefold_then_base_title_then_fuzzy(corpus):
    assert corpus.find("Velmora").how == "exact"
    hit = corpus.find("  velmora ")
    assert hit.how == "casefold" and hit.paragraph.title == "Velmora"
    assert corpus.find("cafe lumen").paragraph.title == "Café Lumen"  # accents folded
    base = corpus.find("Mercury")
    assert base.how == "base-title" and base.paragraph.title == "Mercury (planet)"
    fuzzy = corpus.find("Ida Bran")
    assert fuzzy.how == "fuzzy" and fuzzy.paragraph.title == "Ida Brann"


def test_a_leading_article_is_optional_on_either_side():
    from autoact.tools.corpus import Corpus

    corpus = Corpus.from_records([
        {"title": "The Salt Hymns", "text": "The Salt Hymns is a collection of poems."},
        {"title": "Beatles", "text": "The Beatles were a band."},
        {"title": "Salt kiln", "text": "A salt kiln dries salt."},
    ])
    for asked, title in [("Salt Hymns", "The Salt Hymns"), ("salt hymns", "The Salt Hymns"),
                         ("The Beatles", "Beatles"), ("the salt kiln", "Salt kiln")]:
        hit = corpus.find(asked)
        assert hit.how == "base-title" and hit.paragraph.title == title, asked
    assert corpus.find("The Salt Hymns").how == "exact"
    assert corpus.find("Hymns") is None  # only an article may be left out, not a word


def test_miss_and_similar_titles(corpus):
    assert corpus.find("Quillhaven") is None
    assert corpus.find("") is None
    similar = corpus.similar_titles("Mercury planet", k=2)
    assert "Mercury (planet)" in similar and len(similar) == 2


def test_duplicates_keep_the_first_and_fingerprint_tracks_content():
    a = Corpus([Paragraph("T", ("one.",)), Paragraph("T", ("two.",))])
    assert len(a) == 1 and a.duplicates == 1 and a.get("T").text == "one."
    b = Corpus([Paragraph("T", ("one.",))])
    c = Corpus([Paragraph("T", ("one!",))])
    assert a.fingerprint == b.fingerprint != c.fingerprint


def test_jsonl_round_trip(tmp_path, corpus):
    path = corpus.to_jsonl(tmp_path / "c.jsonl")
    again = Corpus.from_jsonl(path)
    assert again.titles == corpus.titles and again.fingerprint == corpus.fingerprint


def test_hotpotqa_contexts():
    questions = [
        {"context": [["A", ["First.", " Second."]], ["B", ["Only."]]]},
        {"context": [["A", ["First.", " Second."]], ["C", ["", "Third."]]]},
    ]
    corpus = Corpus.from_hotpotqa(questions)
    assert corpus.titles == ["A", "B", "C"]
    assert corpus.get("A").sentences == ("First.", "Second.")
    assert corpus.get("C").sentences == ("Third.",)


def test_hotpotqa_contexts_in_the_hub_layout():
    questions = [{"context": {"title": ["A", "B"], "sentences": [["One.", " Two."], ["Three."]]}}]
    corpus = Corpus.from_hotpotqa(questions)
    assert corpus.titles == ["A", "B"] and corpus.get("A").sentences == ("One.", "Two.")


@pytest.mark.parametrize(
    "line,message",
    [
        ("not json", "not valid JSON"),
        (json.dumps({"text": "x"}), "title"),
        (json.dumps({"title": "x"}), "'sentences' or 'text'"),
        (json.dumps({"title": "x", "sentences": "a string"}), "list of strings"),
        (json.dumps({"title": "x", "text": "  "}), "no text"),
    ],
)
def test_bad_files_give_clear_errors(tmp_path, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(ValueError, match=message):
        Corpus.from_jsonl(path)


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        Corpus.from_jsonl(tmp_path / "nope.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(ValueError, match="no paragraphs"):
        Corpus.from_jsonl(tmp_path / "empty.jsonl")
