"""Words as DataTrove's English quality filters count them, without spaCy: a numba kernel.

DataTrove splits English with spaCy's blank "en" tokenizer (whitespace tokens dropped): text
splits at whitespace; punctuation, quotes and brackets come off either end of a chunk one at a
time, as do "'s", runs of dots, and a final period after a lowercase letter, a digit or two
capitals (so "Smith." splits but "U.S." and the exceptions in `ABBREVIATIONS` do not); inside, a
hyphen between letters or digits, "a,b", "and/or", "1+2", "a...b" and "end.Next" split; URLs stay
whole; "don't" gives "do" "n't". This kernel follows those rules over code points and writes
each token's (start, length): no Python object per word. spaCy's other exceptions (emoticons,
"cannot", units such as "5km") are not followed; bench/quality_vs_datatrove.py measures what
that costs in agreeing decisions.

    n = tokenize(cp, len_cp, char_flags(), *word_tables(), starts, lengths)
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numba import njit

from pipeline.quality.chars import (
    ABBREVIATIONS,
    AFFIX,
    ALPHA,
    DIGIT,
    ICON,
    LOWER,
    PREFIX,
    SPACE,
    UPPER,
)

# Words whose "'d 'll 're 've 'm" spaCy splits off (its English exceptions), any case.
PRONOUNS = ("i", "you", "he", "she", "it", "we", "they", "who", "what", "that", "there", "where",
            "when", "why", "how", "y'all")  # fmt: skip


@njit(cache=True, inline="always")
def flag_of(flags, c):
    if c < 0x10000:
        return np.int64(flags[c])
    if 0x1F000 <= c <= 0x1FFFF:  # emoji and other symbols
        return np.int64(ICON | AFFIX)
    return np.int64(ALPHA | LOWER | UPPER)  # letters of other planes; no case


@njit(cache=True, inline="always")
def fmix64(h):
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xFF51AFD7ED558CCD)
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xC4CEB9FE1A85EC53)
    return h ^ (h >> np.uint64(33))


@njit(cache=True)
def span_hash(cp, s, e):
    """FNV-1a over the code points, then mixed: equal spans, equal hashes."""
    h = np.uint64(0xCBF29CE484222325)
    for i in range(s, e):
        h = (h ^ np.uint64(cp[i])) * np.uint64(0x100000001B3)
    return fmix64(h)


def string_hash(text: str) -> np.uint64:
    cp = np.array([ord(c) for c in text], dtype=np.int32)
    return np.uint64(span_hash(cp, 0, len(cp)))


def _hashes(words) -> np.ndarray:
    return np.unique(np.array([string_hash(w) for w in words], dtype=np.uint64))


@lru_cache(maxsize=1)
def word_tables() -> tuple[np.ndarray, np.ndarray]:
    """(abbreviation hashes, pronoun hashes): tokenize's `specials` and `pronouns`."""
    pronouns = [f(p) for p in PRONOUNS for f in (str.lower, str.capitalize, str.upper)]
    return _hashes(ABBREVIATIONS), _hashes(pronouns)


@njit(cache=True, inline="always")
def _special(cp, s, e, specials):
    if e - s < 2 or cp[e - 1] != 46:  # every exception kept ends in "."
        return False
    h = span_hash(cp, s, e)
    k = np.searchsorted(specials, h)
    return k < specials.shape[0] and specials[k] == h


@njit(cache=True, inline="always")
def _dots(cp, s, e, forward):
    k = 0
    if forward:
        while s + k < e and cp[s + k] == 46:
            k += 1
    else:
        while e - 1 - k >= s and cp[e - 1 - k] == 46:
            k += 1
    return k


@njit(cache=True)
def _prefix_len(cp, s, e, flags):
    c = cp[s]
    if c == 46:
        k = _dots(cp, s, e, True)
        return k if k >= 2 else 0
    if c == 43:  # "+" unless a number follows
        return 0 if s + 1 < e and flag_of(flags, cp[s + 1]) & DIGIT else 1
    return 1 if flag_of(flags, c) & (AFFIX | PREFIX) else 0


@njit(cache=True)
def _suffix_len(cp, s, e, flags):
    n = e - s
    c = cp[e - 1]
    if c == 46:
        k = _dots(cp, s, e, False)
        if k >= 2:
            return k
        if n >= 2:
            p = cp[e - 2]
            fp = flag_of(flags, p)
            if fp & (DIGIT | AFFIX) or (fp & LOWER and not fp & UPPER) or p in (37, 178, 45, 43):
                return 1
            if n >= 3 and fp & UPPER and not fp & LOWER:
                fq = flag_of(flags, cp[e - 3])
                if fq & UPPER and not fq & LOWER:
                    return 1
        return 0
    if n >= 3 and (c == 115 or c == 83) and (cp[e - 2] == 39 or cp[e - 2] == 0x2019):
        return 2  # 's 'S ’s ’S
    f = flag_of(flags, c)
    if f & AFFIX:
        return 1
    if n >= 2 and (c == 43 or c == 37 or f & PREFIX) and flag_of(flags, cp[e - 2]) & DIGIT:
        return 1  # 5+ 50% 5$
    return 0


@njit(cache=True, inline="always")
def _emit(starts, lengths, nt, s, e):
    if e > s:
        starts[nt] = s
        lengths[nt] = e - s
        nt += 1
    return nt


@njit(cache=True)
def _is_url(cp, s, e):
    if e - s >= 4 and cp[s] == 119 and cp[s + 1] == 119 and cp[s + 2] == 119 and cp[s + 3] == 46:
        return True
    for i in range(s, e - 2):  # noqa: SIM110 (numba: no generator expressions)
        if cp[i] == 58 and cp[i + 1] == 47 and cp[i + 2] == 47:
            return True
    return False


@njit(cache=True)
def _infix_len(cp, i, s, e, flags):
    """Length of the infix starting at i (s < i < e - 1), or 0."""
    c = cp[i]
    if flag_of(flags, c) & (ALPHA | DIGIT):  # most characters: no infix starts at a letter
        return 0
    prev = flag_of(flags, cp[i - 1])
    if c == 46 and cp[i + 1] == 46:
        return _dots(cp, i, e, True)
    if c == 0x2026 or flag_of(flags, c) & ICON:
        return 1
    if c in (45, 0x2013, 0x2014, 126):  # - – — ~, and runs such as "--"
        k = 1
        while i + k < e and cp[i + k] in (45, 0x2013, 0x2014):
            k += 1
        if i + k < e and prev & (ALPHA | DIGIT) and flag_of(flags, cp[i + k]) & ALPHA:
            return k
        if c == 45 and prev & DIGIT and (flag_of(flags, cp[i + 1]) & DIGIT or cp[i + 1] == 45):
            return 1
        return 0
    nxt = flag_of(flags, cp[i + 1])
    if c in (43, 42, 94) and prev & DIGIT and (nxt & DIGIT or cp[i + 1] == 45):
        return 1
    if c == 44 and prev & ALPHA and nxt & ALPHA:
        return 1
    if c in (58, 60, 62, 61, 47) and prev & (ALPHA | DIGIT) and nxt & ALPHA:
        return 1
    if c == 46:
        quote_prev = cp[i - 1] in (39, 34, 0x201D, 0x201C, 0x2019, 0x2018)
        quote_next = cp[i + 1] in (39, 34, 0x201D, 0x201C, 0x2019, 0x2018)
        lower_prev = prev & LOWER and not prev & UPPER
        upper_next = nxt & UPPER and not nxt & LOWER
        if (lower_prev or quote_prev) and (upper_next or quote_next):
            return 1
    return 0


@njit(cache=True, inline="always")
def _lower_equals(cp, s, word):
    for k in range(len(word)):  # noqa: SIM110 (numba: no generator expressions)
        if cp[s + k] | 32 != ord(word[k]):
            return False
    return True


@njit(cache=True, inline="always")
def _contraction(cp, s, e):
    """cp[s:e] (after the apostrophe) is d, m, ll, re or ve, any case."""
    if e - s == 1:
        return cp[s] | 32 in (100, 109)
    a, b = cp[s] | 32, cp[s + 1] | 32
    return (a == 108 and b == 108) or (a == 114 and b == 101) or (a == 118 and b == 101)


@njit(cache=True)
def _core(cp, s, e, flags, specials, pronouns, starts, lengths, nt):
    if _special(cp, s, e, specials) or _is_url(cp, s, e):
        return _emit(starts, lengths, nt, s, e)
    # Contractions as spaCy lists them: "n't" off a word of two letters or more, "cannot", and
    # "'d 'll 're 've 'm" off the pronouns of `PRONOUNS` only ("kill'd" stays whole).
    tail = 0
    n_t = e - s >= 5 and cp[e - 1] in (116, 84) and cp[e - 3] in (110, 78)
    if (n_t and cp[e - 2] in (39, 0x2019)) or (e - s == 6 and _lower_equals(cp, s, "cannot")):
        tail = 3
    else:
        for k in (2, 3):
            if e - s > k and cp[e - k] in (39, 0x2019) and _contraction(cp, e - k + 1, e):
                h = span_hash(cp, s, e - k)
                j = np.searchsorted(pronouns, h)
                if j < pronouns.shape[0] and pronouns[j] == h:
                    tail = k
    end = e - tail
    seg = s
    i = s + 1
    while i < end - 1:
        k = _infix_len(cp, i, s, end, flags)
        if k:
            nt = _emit(starts, lengths, nt, seg, i)
            nt = _emit(starts, lengths, nt, i, i + k)
            seg = i + k
            i += k
        else:
            i += 1
    nt = _emit(starts, lengths, nt, seg, end)
    return _emit(starts, lengths, nt, end, e)


@njit(cache=True)
def _chunk(cp, s, e, flags, specials, pronouns, starts, lengths, nt, stack):
    ns = 0  # suffixes come off the end first and go out last: a stack of (start, end)
    while s < e:
        if _special(cp, s, e, specials):
            break
        last = e - s
        pl = _prefix_len(cp, s, e, flags)
        if pl and s + pl < e and _special(cp, s + pl, e, specials):
            nt = _emit(starts, lengths, nt, s, s + pl)
            s += pl
            break
        sl = _suffix_len(cp, s + pl, e, flags) if s + pl < e else 0
        if sl and e - sl > s and _special(cp, s, e - sl, specials):
            stack[ns, 0], stack[ns, 1] = e - sl, e
            ns += 1
            e -= sl
            break
        if pl and sl and pl + sl <= e - s:
            nt = _emit(starts, lengths, nt, s, s + pl)
            stack[ns, 0], stack[ns, 1] = e - sl, e
            ns += 1
            s, e = s + pl, e - sl
        elif pl:
            nt = _emit(starts, lengths, nt, s, s + pl)
            s += pl
        elif sl:
            stack[ns, 0], stack[ns, 1] = e - sl, e
            ns += 1
            e -= sl
        if e - s == last:
            break
    if s < e:
        nt = _core(cp, s, e, flags, specials, pronouns, starts, lengths, nt)
    for k in range(ns - 1, -1, -1):
        nt = _emit(starts, lengths, nt, stack[k, 0], stack[k, 1])
    return nt


@njit(cache=True)
def tokenize(cp, n, flags, specials, pronouns, starts, lengths):
    """Tokens of cp[:n] into starts/lengths (room for n + 1); returns how many."""
    stack = np.empty((n + 1, 2), dtype=np.int64)
    nt = 0
    i = 0
    while i < n:
        while i < n and flag_of(flags, cp[i]) & SPACE:
            i += 1
        s = i
        while i < n and not flag_of(flags, cp[i]) & SPACE:
            i += 1
        if i > s:
            first = nt
            nt = _chunk(cp, s, i, flags, specials, pronouns, starts, lengths, nt, stack)
            nt = _rejoin_specials(cp, specials, starts, lengths, first, nt)
    return nt


@njit(cache=True)
def _rejoin_specials(cp, specials, starts, lengths, first, nt):
    """spaCy matches its exceptions again across the pieces of a chunk: "post-Sept." splits
    into "post" "-" "Sept" "." and "Sept" "." join again."""
    k = first
    while k < nt - 1:
        end = starts[k] + lengths[k]
        if lengths[k + 1] == 1 and cp[end] == 46 and _special(cp, starts[k], end + 1, specials):
            lengths[k] += 1
            for j in range(k + 1, nt - 1):
                starts[j], lengths[j] = starts[j + 1], lengths[j + 1]
            nt -= 1
        k += 1
    return nt
