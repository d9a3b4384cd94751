"""Gopher's repetition measures (Rae et al. 2021, appendix A) on whitespace words, for the
fidelity gate's rewrites (pipeline/text_fidelity/scores.py). The quality stage counts the same
measures as DataTrove defines them, in its batch kernel (pipeline/quality/textstats.py).

Words are whitespace-separated tokens; characters are counted over the words (whitespace
excluded), so the n-gram fractions do not depend on layout. N-grams are hashed to uint64 with
numpy (collisions are negligible at 2^-64 per pair), so a 30,000-word play takes milliseconds.

    dup_fracs(["a", "b", "a"])                  # -> (1/3, share of characters in the repeat)
    top_ngram_char_frac(words, 2)               # most frequent bigram's characters / all
    dup_ngram_char_frac(words, 5)               # characters inside repeated 5-grams / all
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_MUL = np.uint64(0x9E3779B97F4A7C15)  # odd: multiplying by it is a bijection mod 2^64


def paragraphs(text: str) -> list[str]:
    return [p.strip() for p in _PARAGRAPH_BREAK.split(text) if p.strip()]


def nonblank_lines(text: str) -> list[str]:
    """Lines with their content, blank ones left out: blank lines are layout, and counting
    them as duplicates of each other would flag every double-spaced text."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def dup_fracs(items: Sequence[str]) -> tuple[float, float]:
    """(share of items that repeat an earlier one, share of characters in those repeats)."""
    if not items:
        return 0.0, 0.0
    seen: set[str] = set()
    dup_items = dup_chars = total_chars = 0
    for item in items:
        total_chars += len(item)
        if item in seen:
            dup_items += 1
            dup_chars += len(item)
        else:
            seen.add(item)
    return dup_items / len(items), dup_chars / max(total_chars, 1)


def _word_ids(words: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per word: an id (equal words, equal ids) and its length in characters."""
    vocab: dict[str, int] = {}
    ids = np.fromiter((vocab.setdefault(w, len(vocab)) for w in words), np.uint64, len(words))
    lengths = np.fromiter((len(w) for w in words), np.int64, len(words))
    return ids, lengths


def _ngram_hashes(ids: np.ndarray, n: int) -> np.ndarray:
    """One uint64 per n-gram starting at 0 .. len - n (a polynomial hash of its word ids)."""
    count = len(ids) - n + 1
    h = np.zeros(count, dtype=np.uint64)
    for j in range(n):  # uint64 arithmetic wraps silently
        h = h * _MUL + ids[j : j + count] + np.uint64(1)
    return h


def _covered_chars(starts: np.ndarray, n: int, lengths: np.ndarray) -> int:
    """Characters of the words inside n-grams starting at `starts`, each word counted once
    (overlapping occurrences, as in "a a a", would otherwise count a word twice)."""
    cover = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.add.at(cover, starts, 1)
    np.add.at(cover, starts + n, -1)
    return int(lengths[np.cumsum(cover[:-1]) > 0].sum())


def top_ngram_char_frac(words: Sequence[str], n: int) -> float:
    """Characters inside the occurrences of the most frequent n-gram / characters of all words
    (ties: the one covering more characters)."""
    if len(words) < n:
        return 0.0
    ids, lengths = _word_ids(words)
    h = _ngram_hashes(ids, n)
    _, inverse, counts = np.unique(h, return_inverse=True, return_counts=True)
    if counts.max() < 2:
        return 0.0
    best = max(
        _covered_chars(np.flatnonzero(inverse == k), n, lengths)
        for k in np.flatnonzero(counts == counts.max())[:16]  # ties: a few suffice
    )
    return best / max(int(lengths.sum()), 1)


def dup_ngram_char_frac(words: Sequence[str], n: int) -> float:
    """Characters of words inside any n-gram that occurred before / characters of all words.

    Overlapping repeats count each word once (a coverage mask, not a sum over n-grams)."""
    if len(words) < n:
        return 0.0
    ids, lengths = _word_ids(words)
    h = _ngram_hashes(ids, n)
    _, first, inverse = np.unique(h, return_index=True, return_inverse=True)
    repeat_starts = np.flatnonzero(first[inverse] != np.arange(len(h)))
    if repeat_starts.size == 0:
        return 0.0
    return _covered_chars(repeat_starts, n, lengths) / max(int(lengths.sum()), 1)
