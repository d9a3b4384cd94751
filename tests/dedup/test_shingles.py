"""Shingling kernel against its readable reference, the character classes, and exact digests."""

from __future__ import annotations

import hashlib

import numpy as np
from datasketch.hashfunc import sha1_hash32
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit

from pipeline.config import ShingleConfig
from pipeline.dedup.keys import text_digest
from pipeline.similarity import shingles
from pipeline.similarity.shingles import (
    NON_WORD_RANGES,
    hash_shingle_string,
    sha1_shingle_hashes,
    shingle_hashes,
    shingle_hashes_batch,
    shingle_strings,
)

# Several scripts, ASCII and Unicode punctuation, odd spaces, 2/3/4-byte UTF-8, case pairs.
MIXED = st.text(
    alphabet=st.sampled_from(
        list("abcXYZ019 \t\n.,;!?-'\"()")
        + list("éÉßİΣσς")  # Latin-1/Greek, incl. case mappings that change length
        + list("приветМИР")  # Cyrillic
        + list("你好世界，。「」")  # CJK with CJK and fullwidth punctuation
        + list("مرحبا،")  # Arabic with Arabic comma
        + ["\u00a0", "\u2003", "\u3000", "\u1680", "\u200b", "—", "…", "«", "×", "𝄞", "😀"]
    ),
    max_size=60,
)
CONFIGS = st.builds(
    ShingleConfig,
    kind=st.sampled_from(["word", "char"]),
    n=st.integers(1, 6),
    lowercase=st.booleans(),
    punctuation=st.sampled_from(["strip", "keep"]),
)


def reference_hashes(text: str, cfg: ShingleConfig) -> np.ndarray:
    strings = set(shingle_strings(text, cfg))
    return np.array(sorted({hash_shingle_string(s, cfg.kind) for s in strings}), dtype=np.uint32)


@settings(max_examples=300, deadline=None)
@given(text=MIXED | st.text(max_size=40), cfg=CONFIGS)
def test_kernel_equals_reference(text, cfg):
    got = shingle_hashes(text, cfg)
    assert got.dtype == np.uint32
    assert len(got) == len(set(shingle_strings(text, cfg)))  # small texts: no collisions
    np.testing.assert_array_equal(got, reference_hashes(text, cfg))


@settings(max_examples=50, deadline=None)
@given(texts=st.lists(MIXED, max_size=8), cfg=CONFIGS)
def test_batch_is_concatenation_of_single_docs(texts, cfg):
    values, offsets = shingle_hashes_batch(texts, cfg)
    assert offsets.dtype == np.int64 and len(offsets) == len(texts) + 1 and offsets[0] == 0
    for i, text in enumerate(texts):
        np.testing.assert_array_equal(
            values[offsets[i] : offsets[i + 1]], shingle_hashes(text, cfg)
        )


def test_word_tokens_and_punctuation():
    text = "Hello, World! It's 42°C—«quoted» 你好，世界。"
    strip = shingle_strings(text, ShingleConfig(n=2))
    assert strip == ["hello world", "world it", "it s", "s 42", "42 c", "c quoted", "quoted 你好",
                     "你好 世界"]  # fmt: skip
    keep = shingle_strings("a, b!", ShingleConfig(n=3, punctuation="keep"))
    assert keep == ["a , b", ", b !"]
    assert shingle_strings("Ab AB", ShingleConfig(n=2, lowercase=False)) == ["Ab AB"]


def test_char_mode_collapses_and_strips_whitespace():
    cfg = ShingleConfig(kind="char", n=3)
    assert shingle_strings("  ab \t\n c  ", cfg) == ["ab ", "b c"]
    np.testing.assert_array_equal(
        shingle_hashes("ab c", cfg), shingle_hashes(" ab\u3000\n c ", cfg)
    )


def test_short_and_empty_docs():
    cfg = ShingleConfig(n=5)
    assert shingle_strings("only three words", cfg) == ["only three words"]
    assert len(shingle_hashes("only three words", cfg)) == 1
    for empty in ["", "   ", "...!?", "\u3000、。"]:
        assert len(shingle_hashes(empty, cfg)) == 0
    values, offsets = shingle_hashes_batch([], cfg)
    assert len(values) == 0 and offsets.tolist() == [0]


def test_lowercase_option():
    upper, lower = "The Quick Brown Fox", "the quick brown fox"
    on, off = ShingleConfig(n=2), ShingleConfig(n=2, lowercase=False)
    np.testing.assert_array_equal(shingle_hashes(upper, on), shingle_hashes(lower, on))
    assert not np.array_equal(shingle_hashes(upper, off), shingle_hashes(lower, off))


def test_lone_surrogate_does_not_raise():
    assert len(shingle_hashes("a\ud800b c", ShingleConfig(n=1))) == 2


@njit
def _classify_all(codes):
    space = np.empty(codes.shape[0], np.bool_)
    word = np.empty(codes.shape[0], np.bool_)
    for i in range(codes.shape[0]):
        space[i] = shingles._is_space(codes[i])
        word[i] = shingles._is_word(codes[i])
    return space, word


def test_character_classes_over_all_code_points():
    codes = np.arange(0x110000, dtype=np.uint32)
    space, word = _classify_all(codes)
    python_space = np.array([chr(c).isspace() for c in range(0x110000)])
    np.testing.assert_array_equal(space, python_space)
    assert not (space & word).any()  # every space separates words
    expected_word = np.ones(0x110000, dtype=bool)
    expected_word[:0x80] = [chr(c).isalnum() for c in range(0x80)]
    for lo, hi in NON_WORD_RANGES:
        expected_word[lo : hi + 1] = False
    np.testing.assert_array_equal(word, expected_word)


def test_sha1_hashes_are_datasketch_default_hashing():
    text = "Duplicate detection, with datasketch's default SHA-1 hashing."
    cfg = ShingleConfig(n=3)
    expected = sorted({sha1_hash32(s.encode("utf-8")) for s in shingle_strings(text, cfg)})
    np.testing.assert_array_equal(sha1_shingle_hashes(text, cfg), expected)
    assert sha1_shingle_hashes("", cfg).dtype == np.uint32


def test_text_digest():
    digest = text_digest("héllo")
    assert len(digest) == 16 and digest == text_digest("héllo") != text_digest("hello")
    assert digest == hashlib.blake2b("héllo".encode(), digest_size=16).digest()
