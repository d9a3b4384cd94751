"""Gopher's repetition measures: exact values on small inputs, bounds for any input."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pipeline.text_fidelity.repetition import (
    dup_fracs,
    dup_ngram_char_frac,
    nonblank_lines,
    paragraphs,
    top_ngram_char_frac,
)


def test_dup_fracs_counts_repeats_after_the_first():
    assert dup_fracs(["ab", "cd", "ab", "ab"]) == (0.5, 4 / 8)
    assert dup_fracs([]) == (0.0, 0.0)


def test_blank_lines_and_paragraph_breaks_are_layout():
    text = "one\n\n\n  two  \n\nthree\n"
    assert nonblank_lines(text) == ["one", "two", "three"]
    assert paragraphs("a b\nc\n\n \n d") == ["a b\nc", "d"]


def test_top_ngram_is_the_most_frequent_one_times_its_characters():
    words = ["the", "cat", "the", "cat", "the", "dog"]  # "the cat" twice
    assert top_ngram_char_frac(words, 2) == 12 / 18  # 2 x 6 of 18 word characters
    assert top_ngram_char_frac(["a", "b", "c", "d"], 2) == 0.0  # nothing repeats
    assert top_ngram_char_frac(["a"], 2) == 0.0


def test_duplicate_ngrams_cover_each_word_once():
    words = ["a", "b", "c", "d", "e", "a", "b", "c", "d", "e"]
    assert dup_ngram_char_frac(words, 5) == 0.5  # the second copy
    words = ["x", "y", "z", "x", "y", "z", "x", "y", "z"]  # overlapping repeats from position 3 on
    assert dup_ngram_char_frac(words, 2) == 6 / 9


@given(st.lists(st.sampled_from(["a", "bb", "ccc", "dd", "e"]), max_size=60), st.integers(2, 10))
def test_fractions_are_shares(words, n):
    for value in (top_ngram_char_frac(words, n), dup_ngram_char_frac(words, n)):
        assert 0.0 <= value <= 1.0


@given(st.lists(st.text(alphabet="abcdefgh", min_size=1, max_size=6), min_size=6, max_size=40))
def test_a_text_written_twice_has_half_its_characters_repeated(words):
    doubled = words + words
    # Every 5-gram of the second copy occurred in the first: at least half is repeated.
    assert dup_ngram_char_frac(doubled, 5) >= 0.5 - 1e-9
