"""Answer metrics: normalisation, token F1, exact match, yes/no strictness, choice mapping."""

import pytest

from autoact.metrics import (
    accuracy,
    choice_index,
    exact_match,
    f1_score,
    mc_scores,
    normalize_answer,
    qa_scores,
)


def test_normalize_strips_case_punctuation_articles_and_space():
    assert normalize_answer("  The  Eiffel-Tower!  ") == "eiffeltower"
    assert normalize_answer("An apple, a pear") == "apple pear"
    assert normalize_answer(None) == ""
    # official rules: ASCII punctuation only, no Unicode folding
    assert normalize_answer("Rock ’n’ roll") == "rock ’n’ roll"


def test_empty_answers_follow_the_official_script():
    # both normalise to "": no common token -> F1 0, but the strings are equal -> EM 1
    assert f1_score("", "") == 0.0 and exact_match("", "") == 1.0
    assert qa_scores("", "the") == {"reward": 0.0, "f1": 0.0, "em": 1.0, "precision": 0.0, "recall": 0.0}


def test_f1_partial_overlap():
    # pred tokens {ida, brann, navigator}, gold {ida, brann}: P=2/3, R=1 -> F1=0.8
    assert f1_score("Ida Brann the navigator", "Ida Brann") == pytest.approx(0.8)
    assert f1_score("Harrowby", "Quillhaven") == 0.0


def test_exact_match_after_normalisation_and_aliases():
    assert exact_match("the Pale Sea.", "Pale Sea") == 1.0
    assert exact_match("Pale", "Pale Sea") == 0.0
    assert exact_match("NYC", ["New York City", "NYC"]) == 1.0


def test_yes_no_is_strict():
    assert f1_score("yes", "yes") == 1.0
    assert f1_score("Yes.", "yes") == 1.0
    # token overlap would give partial credit; HotpotQA's rule gives none
    assert f1_score("yes they are", "yes") == 0.0
    assert f1_score("no", "no way") == 0.0
    assert qa_scores("no", "yes") == {"reward": 0.0, "f1": 0.0, "em": 0.0, "precision": 0.0, "recall": 0.0}


def test_qa_scores_fields():
    s = qa_scores("Velmora Lighthouse", "the Velmora Lighthouse")
    assert s["reward"] == s["f1"] == 1.0 and s["em"] == 1.0


@pytest.mark.parametrize(
    "prediction,expected",
    [
        ("B", 1), ("(B)", 1), ("B.", 1), ("b", 1), ("B)", 1),
        ("B. Dover", 1), ("(C) Wilmington", 2),
        ("Dover", 1), ("dover.", 1),
        ("The answer is (D).", 3), ("answer: A", 0),
        ("I think it is Georgetown", 3),
        ("Doverr", 1),
        ("E", None), ("Paris", None), ("", None),
    ],
)
def test_choice_index(prediction, expected):
    assert choice_index(prediction, ["Harrisburg", "Dover", "Wilmington", "Georgetown"]) == expected


def test_choice_index_prefers_longest_contained_option():
    assert choice_index("West Virginia", ["Virginia", "West Virginia"]) == 1
    assert choice_index("It is Virginia", ["Virginia", "West Virginia"]) == 0


def test_lowercase_word_a_is_not_a_letter_inside_text():
    # "the answer is a cat" must not map to option A through the article "a"
    assert choice_index("the answer is a cat", ["dog", "bird"]) is None


def test_mc_scores_and_accuracy():
    assert mc_scores("B", 1, ["x", "y"]) == {"reward": 1.0, "acc": 1.0, "choice": 1}
    assert mc_scores("x", 1, ["x", "y"])["acc"] == 0.0
    with pytest.raises(ValueError):
        mc_scores("x", 5, ["x", "y"])
    assert accuracy([1, 0, None, 2], [1, 1, 0, 2]) == 0.5
    with pytest.raises(ValueError):
        accuracy([1], [1, 2])


def test_choice_index_folds_typographic_punctuation():
    # multiple choice keeps the lenient normalisation: a straight apostrophe names the option typed with ’
    assert choice_index("Rock 'n' roll", ["Jazz", "Rock ’n’ roll"]) == 1
    # with the official normalisation "no" vs "“no”" would match nothing (fuzzy ratio 67 < 80)
    assert choice_index("No", ["“No”", "“Yes”"]) == 0


def test_options_differing_only_in_case():
    choices = ["dear Reggie,", "Dear Reggie,"]
    assert choice_index("Dear Reggie,", choices) == 1
    assert choice_index("dear Reggie,", choices) == 0


def test_contains_phrase_matches_whole_normalised_words():
    from autoact.metrics import contains_phrase

    assert contains_phrase("He was born in Fennick, in 1772.", "fennick")
    assert contains_phrase("The Salt Hymns is a collection.", "Salt Hymns")
    assert not contains_phrase("Fennickton lies north.", "Fennick")  # not part of a word
    assert not contains_phrase("anything", "")  # an empty phrase occurs nowhere
    assert contains_phrase("It opened in 1839 – the first.", "1839 the first", lenient=True)
    assert not contains_phrase("It opened in 1839 – the first.", "1839 the first")
