"""The quality kernel's counts at each rule's edge, on small hand-written texts: the values
DataTrove's filters compute (bench/quality_vs_datatrove.py checks them on 64 MB)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline import schema as S
from pipeline.config.quality import QualityConfig
from pipeline.quality.chars import char_flags
from pipeline.quality.language import LANES, identify, identify_batch
from pipeline.quality.scoring import document_scores
from pipeline.quality.textstats import (
    ALPHA_TOKENS,
    C4_CURLY,
    C4_KEPT_CHARS,
    C4_LINE_CHARS,
    C4_LOREM,
    C4_SENTENCES,
    CHARS,
    DUP5,
    DUP_NGRAM,
    DUP_PARA_CHARS,
    DUP_PARAS,
    DUP_RLINE_CHARS,
    DUP_RLINES,
    FW_DUP_CHARS,
    PARAS,
    RLINES,
    TOKENS,
    TOP2,
    WORDS,
    text_stats,
)
from pipeline.quality.words import tokenize, word_tables

CFG = QualityConfig()


def words(text: str) -> list[str]:
    cp = np.array([ord(c) for c in text], dtype=np.int64)
    starts, lengths = np.empty(len(cp) + 1, np.int64), np.empty(len(cp) + 1, np.int64)
    n = tokenize(cp, len(cp), char_flags(), *word_tables(), starts, lengths)
    return [text[s : s + k] for s, k in zip(starts[:n], lengths[:n], strict=True)]


def stats(text: str) -> np.ndarray:
    return text_stats(pa.array([text], pa.large_string()))[0]


def test_words_split_as_spacy_english_does():
    text = "Mr. Smith's well-known U.S. don't 1990-1995, e.g. 3.5 (see [1]) ... end... A. #tag"
    assert words(text) == [
        "Mr.", "Smith", "'s", "well", "-", "known", "U.S.", "do", "n't", "1990", "-", "1995",
        ",", "e.g.", "3.5", "(", "see", "[", "1", "]", ")", "...", "end", "...", "A.", "#",
        "tag",
    ]  # fmt: skip
    assert words("I'd say you're right; kill'd cannot 10,000 x--y") == [
        "I", "'d", "say", "you", "'re", "right", ";", "kill'd", "can", "not", "10,000", "x",
        "--", "y",
    ]  # fmt: skip
    # spaCy matches its exceptions again across a chunk's pieces: "Sept." stays one token.
    assert words("the post-Sept. talks") == ["the", "post", "-", "Sept.", "talks"]
    assert words("see https://example.com/a-b, or www.example.org.") == [
        "see", "https://example.com/a-b", ",", "or", "www.example.org", ".",
    ]  # fmt: skip


def test_word_count_leaves_out_punctuation_tokens_at_the_fifty_word_edge():
    fifty = " ".join(["the cat, sat."] * 16 + ["on", "a"])  # 50 words, 32 punctuation tokens
    assert document_scores(fifty, CFG)[S.Q_WORDS] == 50
    v = stats(fifty)
    assert v[TOKENS] == 82 and v[WORDS] == 50
    assert document_scores(fifty.rsplit(" ", 1)[0], CFG)[S.Q_WORDS] == 49


def test_symbols_per_token_and_stop_words_as_written():
    s = document_scores("#a #b cat dog.", CFG)  # tokens: # a # b cat dog .
    assert s[S.Q_HASH_RATIO] == pytest.approx(2 / 7)
    assert s[S.Q_ALPHA_WORDS] == 1.0  # of words: "#" and "." are not words
    assert document_scores("The Cat And The Dog", CFG)[S.Q_STOP_WORDS] == 0
    assert document_scores("the cat and the dog", CFG)[S.Q_STOP_WORDS] == 2


def test_bullet_and_ellipsis_lines_count_blank_lines_in_the_denominator():
    s = document_scores("• one\n\n- two\n• three\nfour...", CFG)  # 5 lines, blank included
    assert s[S.Q_BULLET_LINES] == pytest.approx(3 / 5)
    assert s[S.Q_ELLIPSIS_LINES] == pytest.approx(1 / 5)


def test_top_ngram_is_its_joined_characters_times_its_count_over_the_text():
    text = "a b a b a b c"  # "a b" three times (overlaps counted, as Counter does)
    assert stats(text)[TOP2] == 3 * 3
    assert document_scores(text, CFG)[S.Q_TOP_NGRAM[2]] == pytest.approx(9 / 13)


def test_repeated_ngrams_skip_n_words_after_a_repeat():
    # 8 distinct words twice: the scan finds the first 5-gram of the copy, jumps 5 words, and
    # has fewer than 5 left, so 5 of the 8 repeated words count (a coverage mask would say 8).
    first = ["w1", "w2", "w3", "w4", "w5", "w6", "w7", "w8"]
    v = stats(" ".join(first + first))
    assert v[DUP5] == sum(len(w) for w in first[:5])


def test_lines_split_at_newline_runs_and_paragraphs_at_two_newlines():
    text = "same line\nsame line\n\nother\n \nother"
    v = stats(text)
    assert (v[RLINES], v[DUP_RLINES], v[DUP_RLINE_CHARS]) == (5, 2, 9 + 5)
    # "\n \n" is no paragraph break: two paragraphs, neither repeated.
    assert (v[PARAS], v[DUP_PARAS]) == (2, 0)
    assert document_scores(text, CFG)[S.Q_DUP_LINE_CHAR_FRAC] == pytest.approx(14 / len(text))


def test_c4_line_tests_in_datatrove_order():
    ok = "This line has five words."
    assert stats(ok)[C4_SENTENCES] == 1
    assert stats("It ends with a quote mark'")[C4_SENTENCES] == 1  # "'" ends a line
    assert stats("It ends with a curly quote”")[C4_SENTENCES] == 0
    assert stats("A line of five words. [1]")[C4_SENTENCES] == 0  # a space is left at the end
    assert stats("A line of five words.[12][edit]")[C4_SENTENCES] == 1
    assert stats("Four words only here.")[C4_SENTENCES] == 0
    assert stats("Mr. Smith went home early. He left.")[C4_SENTENCES] == 2
    lorem = "lorem ipsum is no prose\nLorem ipsum dolor sit amet."
    assert stats(lorem)[C4_LOREM] == 1  # only lines that pass the end and length tests
    curly = "Please enable JavaScript {here} to see this.\nSet it with {x} in the file."
    assert stats(curly)[C4_CURLY] == 1  # the JavaScript line is dropped before the '{' test


def test_fineweb_lines_are_unstripped_and_a_quote_closes_after_the_mark():
    text = 'It ends here.\nIt ends here. \nA quote."\nA title "Hamlet"\nA question (why?)'
    assert document_scores(text, CFG)[S.Q_LINE_PUNCT_FRAC] == pytest.approx(3 / 5)
    text = "repeat me\nrepeat me\nonce"
    assert document_scores(text, CFG)[S.Q_FW_DUP_LINE_CHAR_FRAC] == pytest.approx(9 / 22)


def test_language_id_equals_py3langid():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    reference = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    for text in ("The cat sat on the mat.", "Le chat est sur le tapis.", "Der Hund schläft."):
        language, probability = identify(text)
        expected = reference.classify(text)
        assert language == expected[0] and probability == pytest.approx(expected[1], abs=1e-5)


def test_a_batch_identifies_each_text_as_alone():
    # More texts than the walk's lanes, of mixed lengths, so lanes finish and take the next
    # text at different steps; blank and featureless texts among them.
    texts = [
        "The cat sat on the mat. " * (k % 5 + 1) if k % 3 else "Le chat est sur le tapis."
        for k in range(3 * LANES)
    ]
    texts[2:2] = ["", "   \n", "Der Hund schläft.", "😀", "x", "ALL CAPITALS HERE"]
    languages, probabilities = identify_batch(texts)
    assert [(lang, float(p)) for lang, p in zip(languages, probabilities, strict=True)] == [
        identify(t) for t in texts
    ]
    assert languages[2] == "und" and probabilities[2] == 0.0
    assert identify_batch(texts, max_chars=5)[0] == [identify(t, 5)[0] for t in texts]
    assert identify_batch([])[0] == []


TRICKY = "ab Z9.,;:!?'\"“”’()[]{}-–—…#•*/&%$+\n\n \t\u00a0é漢😀\u2028"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet=TRICKY, max_size=120), min_size=1, max_size=6))
def test_counts_are_bounded_for_any_text(texts):
    v = text_stats(pa.array(texts, pa.large_string()))
    chars = np.array([len(t) for t in texts])
    assert (v[:, CHARS] == chars).all()
    assert (v[:, WORDS] <= v[:, TOKENS]).all() and (v[:, TOKENS] <= chars).all()
    assert (v[:, ALPHA_TOKENS] <= v[:, WORDS]).all()
    for column in (DUP_RLINE_CHARS, DUP_PARA_CHARS, FW_DUP_CHARS, *DUP_NGRAM.values()):
        assert (v[:, column] <= chars).all()
    assert (v[:, C4_KEPT_CHARS] <= v[:, C4_LINE_CHARS]).all()
    for text, row in zip(texts, v, strict=True):  # the tokens tile the non-space characters
        assert sum(len(w) for w in words(text)) == sum(not c.isspace() for c in text)
        assert row[TOKENS] == len(words(text))
