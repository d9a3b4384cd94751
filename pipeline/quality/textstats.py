"""Per-document counts for every quality rule, one numba pass per batch of texts.

The kernel reads the batch's UTF-8 bytes straight from Arrow, decodes each document to code
points once, splits its words (pipeline/quality/words.py) and counts what Gopher's, C4's and
FineWeb's rules need, as DataTrove defines them: lines and paragraphs and their repeats,
n-gram repeats over hashed words, C4's line tests and sentences. No Python object per word or
line; pipeline/quality/heuristics.py turns the counts into score columns.

    stats = text_stats(pa.array(texts, pa.large_string()), TextStatsParams())   # (docs, N_STATS)
    stats[:, WORDS]
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
from numba import njit

from pipeline.quality.chars import ALPHA, IS_PUNCT, PUNCT_SET, SENT_END, SPACE, TERMINAL, char_flags
from pipeline.quality.words import flag_of, fmix64, span_hash, string_hash, tokenize, word_tables

# Columns of the stats matrix.
(CHARS, TOKENS, WORDS, WORD_CHARS, ALPHA_TOKENS, STOP_WORDS, HASHES, ELLIPSES, LINES,
 BULLET_LINES, ELLIPSIS_LINES, PARAS, DUP_PARAS, DUP_PARA_CHARS, RLINES, DUP_RLINES,
 DUP_RLINE_CHARS, TOP2, TOP3, TOP4, DUP5, DUP6, DUP7, DUP8, DUP9, DUP10, FW_LINES,
 FW_PUNCT_LINES, FW_SHORT_LINES, FW_DUP_CHARS, NEWLINES, C4_SENTENCES, C4_KEPT_CHARS,
 C4_LINE_CHARS, C4_LOREM, C4_CURLY, C4_JS_LINES, C4_POLICY_LINES, N_STATS) = range(39)  # fmt: skip
TOP_NGRAM = {2: TOP2, 3: TOP3, 4: TOP4}  # characters of the top n-gram times its count
DUP_NGRAM = {n: DUP5 + n - 5 for n in range(5, 11)}  # characters in repeated n-grams

# Lowercase phrases the C4 line tests look for; 0 and 1 are lorem ipsum and javascript.
C4_PHRASES = ("lorem ipsum", "javascript", "terms of use", "privacy policy", "cookie policy",
              "uses cookies", "use of cookies", "use cookies")  # fmt: skip


@dataclass(frozen=True)
class TextStatsParams:
    stop_words: tuple[str, ...] = ("the", "be", "to", "of", "and", "that", "have", "with")
    short_line_chars: int = 30  # FineWeb: a line of at most this many characters is short
    min_words_per_line: int = 5  # C4: fewer whitespace words and the line is not kept
    max_word_length: int = 1000  # C4: a longer word and the line is not kept
    phrases: tuple[str, ...] = field(default=C4_PHRASES)


def phrase_masks(texts: list[str], phrases: tuple[str, ...]) -> np.ndarray:
    """Per text, a bit per phrase it holds anywhere, lowercased (str.lower and `in` run in C):
    the kernel looks for a phrase line by line only in texts that hold it."""
    masks = np.zeros(len(texts), dtype=np.int64)
    for i, text in enumerate(texts):
        low = text.lower()
        for k, phrase in enumerate(phrases):
            if phrase in low:
                masks[i] |= 1 << k
    return masks


def text_stats(
    texts: pa.Array, params: TextStatsParams = TextStatsParams(), pylist: list[str] | None = None
) -> np.ndarray:
    """float64 (docs, N_STATS) for a string or large_string Arrow array without nulls;
    `pylist`: the same texts as Python strings, when the caller has them already."""
    arr = texts.cast(pa.large_string()) if not pa.types.is_large_string(texts.type) else texts
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    _, offsets_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int64)[arr.offset : arr.offset + len(arr) + 1]
    data = (
        np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.zeros(0, np.uint8)
    )
    specials, pronouns = word_tables()
    stop = np.array([string_hash(w) for w in params.stop_words], dtype=np.uint64)
    phrases = np.zeros((len(params.phrases), max(map(len, params.phrases))), dtype=np.int32)
    lengths = np.array([len(p) for p in params.phrases], dtype=np.int64)
    for k, p in enumerate(params.phrases):
        phrases[k, : len(p)] = [ord(c) for c in p]
    masks = phrase_masks(arr.to_pylist() if pylist is None else pylist, params.phrases)
    limits = (params.short_line_chars, params.min_words_per_line, params.max_word_length)
    tables = (char_flags(), specials, pronouns, stop, phrases, lengths)
    return _batch(data, offsets, *tables, masks, *limits)


@njit(cache=True)
def _decode(buf, start, end, cp):
    n = 0
    i = start
    while i < end:
        b0 = np.int64(buf[i])
        if b0 < 0x80:
            c, i = b0, i + 1
        elif b0 < 0xE0:
            c, i = ((b0 & 0x1F) << 6) | (buf[i + 1] & 0x3F), i + 2
        elif b0 < 0xF0:
            c = ((b0 & 0x0F) << 12) | ((buf[i + 1] & 0x3F) << 6) | (buf[i + 2] & 0x3F)
            i += 3
        else:
            c = ((b0 & 0x07) << 18) | ((buf[i + 1] & 0x3F) << 12) | ((buf[i + 2] & 0x3F) << 6)
            c, i = c | (buf[i + 3] & 0x3F), i + 4
        cp[n] = c
        n += 1
    return n


@njit(cache=True)
def _seen(table, used, mask, key):
    """Insert key into an open-addressing set of mask + 1 slots; True if it was there already."""
    j = np.int64(key & np.uint64(mask))
    while used[j]:
        if table[j] == key:
            return True
        j = (j + 1) & mask
    used[j] = True
    table[j] = key
    return False


@njit(cache=True, inline="always")
def _clear(used, n_items):
    """The slot mask for n_items keys (a table at most half full), with those slots emptied:
    a document clears what it needs, not the table sized for the batch's longest."""
    cap = 16
    while cap < 2 * n_items:
        cap *= 2
    used[:cap] = False
    return cap - 1


@njit(cache=True)
def _repeats(cp, spans, n_items, table, used):
    """DataTrove's find_duplicates: (items equal to an earlier one, their characters)."""
    mask = _clear(used, n_items)
    dup = 0
    chars = 0
    for k in range(n_items):
        s, e = spans[k, 0], spans[k, 1]
        if _seen(table, used, mask, span_hash(cp, s, e)):
            dup += 1
            chars += e - s
    return dup, chars


@njit(cache=True)
def _has_phrase(cp, s, e, phrases, lengths, k):
    m = lengths[k]
    for i in range(s, e - m + 1):
        j = 0
        while j < m:
            c = cp[i + j]
            if 65 <= c <= 90:
                c += 32
            if c != phrases[k, j]:
                break
            j += 1
        if j == m:
            return True
    return False


@njit(cache=True)
def _ngrams(th, tl, nt, table, used, counts, first, out):
    """Top n-gram (Counter.most_common: ties to the first seen) and DataTrove's greedy repeated
    n-gram scan, over rolling polynomial hashes of the word hashes."""
    prefix = np.zeros(nt + 1, dtype=np.uint64)
    chars = np.zeros(nt + 1, dtype=np.int64)
    base = np.uint64(0x100000001B3)
    for i in range(nt):
        prefix[i + 1] = prefix[i] * base + th[i]
        chars[i + 1] = chars[i] + tl[i]
    for n in range(2, 11):
        if nt < n:
            continue
        power = np.uint64(1)
        for _ in range(n):
            power *= base
        mask = _clear(used, nt - n + 1)
        if n <= 4:
            best, best_first = 0, 0
            for i in range(nt - n + 1):
                key = fmix64(prefix[i + n] - prefix[i] * power)
                j = np.int64(key & np.uint64(mask))
                while used[j] and table[j] != key:
                    j = (j + 1) & mask
                if not used[j]:
                    used[j], table[j], counts[j], first[j] = True, key, 0, i
                counts[j] += 1
                if counts[j] > best or (counts[j] == best and first[j] < best_first):
                    best, best_first = counts[j], first[j]
            f = best_first
            out[TOP2 + n - 2] = (chars[f + n] - chars[f] + n - 1) * best
        else:
            i, repeated = 0, 0
            while i < nt - n + 1:
                if _seen(table, used, mask, fmix64(prefix[i + n] - prefix[i] * power)):
                    repeated += chars[i + n] - chars[i]
                    i += n
                else:
                    i += 1
            out[DUP5 + n - 5] = repeated


@njit(cache=True)
def _batch(data, offsets, flags, specials, pronouns, stop, phrases, plen, masks, short_chars,
           min_words, max_word):  # fmt: skip
    n_docs = offsets.shape[0] - 1
    out = np.zeros((n_docs, N_STATS), dtype=np.float64)
    longest = 1
    for d in range(n_docs):
        longest = max(longest, offsets[d + 1] - offsets[d] + 1)
    cp = np.empty(longest, dtype=np.int64)
    ts = np.empty(longest, dtype=np.int64)
    tl = np.empty(longest, dtype=np.int64)
    th = np.empty(longest, dtype=np.uint64)
    spans = np.empty((longest, 2), dtype=np.int64)
    cap = 16
    while cap < 2 * longest:
        cap *= 2
    table = np.empty(cap, dtype=np.uint64)
    used = np.empty(cap, dtype=np.bool_)
    counts = np.empty(cap, dtype=np.int64)
    first = np.empty(cap, dtype=np.int64)
    for d in range(n_docs):
        row = out[d]
        n = _decode(data, offsets[d], offsets[d + 1], cp)
        nt = tokenize(cp, n, flags, specials, pronouns, ts, tl)
        row[CHARS], row[TOKENS] = n, nt
        seen_stop = np.zeros(stop.shape[0], dtype=np.bool_)
        for k in range(nt):
            s, e = ts[k], ts[k] + tl[k]
            th[k] = span_hash(cp, s, e)
            symbol, alpha = True, False
            for i in range(s, e):
                f = flag_of(flags, cp[i])
                symbol = symbol and (f & PUNCT_SET) != 0
                alpha = alpha or (f & ALPHA) != 0
            if not symbol:
                row[WORDS] += 1
                row[WORD_CHARS] += e - s
            row[ALPHA_TOKENS] += alpha
            for j in range(stop.shape[0]):
                seen_stop[j] |= th[k] == stop[j]
        row[STOP_WORDS] = seen_stop.sum()
        _ngrams(th, tl, nt, table, used, counts, first, row)
        _lines(cp, n, flags, ts, tl, nt, masks[d], phrases, plen, short_chars, min_words, max_word,
               spans, table, used, row)  # fmt: skip
    return out


@njit(cache=True)
def _lines(cp, n, flags, ts, tl, nt, mask, phrases, plen, short_chars, min_words, max_word, spans,
           table, used, row):  # fmt: skip
    """Every line-level count; lines split at '\\n' (ingest leaves no other line break)."""
    dots = 0
    for i in range(n + 1):  # str.count("..."): runs of dots, non-overlapping threes
        if i < n and cp[i] == 46:
            dots += 1
        else:
            row[ELLIPSES] += dots // 3
            dots = 0
        if i < n:
            row[HASHES] += cp[i] == 35
            row[ELLIPSES] += cp[i] == 0x2026
            row[NEWLINES] += cp[i] == 10
    # Gopher: str.splitlines(), blank lines included; FineWeb: split("\n"), blank ones left out.
    n_lines, n_fw, tok = 0, 0, 0
    ls = 0
    while ls <= n and n > 0:
        le = ls
        while le < n and cp[le] != 10:
            le += 1
        if le == n and ls == n:  # splitlines drops the empty piece after a final newline
            break
        n_lines += 1
        ss, se = ls, le
        while ss < se and flag_of(flags, cp[ss]) & SPACE:
            ss += 1
        while se > ss and flag_of(flags, cp[se - 1]) & SPACE:
            se -= 1
        if ss < se:
            row[BULLET_LINES] += cp[ss] == 0x2022 or cp[ss] == 45
            row[ELLIPSIS_LINES] += cp[se - 1] == 0x2026 or (
                se - ss >= 3 and cp[se - 1] == 46 and cp[se - 2] == 46 and cp[se - 3] == 46
            )
            spans[n_fw, 0], spans[n_fw, 1] = ls, le
            n_fw += 1
            row[FW_PUNCT_LINES] += _ends_sentence(cp, ls, le, flags)
            row[FW_SHORT_LINES] += le - ls <= short_chars
            while tok < nt and ts[tok] < ss:
                tok += 1
            first_tok = tok
            while tok < nt and ts[tok] < se:
                tok += 1
            _c4_line(cp, ss, se, flags, ts, tl, first_tok, tok, mask, phrases, plen, min_words,
                     max_word, row)  # fmt: skip
        ls = le + 1
    row[LINES] = n_lines
    row[FW_LINES] = n_fw
    row[FW_DUP_CHARS] = _repeats(cp, spans, n_fw, table, used)[1]
    # Gopher repetition: re.split("\n+", text) and re.split("\n{2,}", text.strip()).
    k, seg, i = 0, 0, 0
    while i < n:
        if cp[i] == 10:
            j = i
            while j < n and cp[j] == 10:
                j += 1
            spans[k, 0], spans[k, 1] = seg, i
            k += 1
            seg, i = j, j
        else:
            i += 1
    spans[k, 0], spans[k, 1] = seg, n
    row[RLINES] = k + 1
    row[DUP_RLINES], row[DUP_RLINE_CHARS] = _repeats(cp, spans, k + 1, table, used)
    a, b = 0, n
    while a < b and flag_of(flags, cp[a]) & SPACE:
        a += 1
    while b > a and flag_of(flags, cp[b - 1]) & SPACE:
        b -= 1
    k, seg, i = 0, a, a
    while i < b:
        if cp[i] == 10 and i + 1 < b and cp[i + 1] == 10:
            j = i
            while j < b and cp[j] == 10:
                j += 1
            spans[k, 0], spans[k, 1] = seg, i
            k += 1
            seg, i = j, j
        else:
            i += 1
    spans[k, 0], spans[k, 1] = seg, b
    row[PARAS] = k + 1
    row[DUP_PARAS], row[DUP_PARA_CHARS] = _repeats(cp, spans, k + 1, table, used)


@njit(cache=True)
def _c4_line(cp, ss, se, flags, ts, tl, t0, t1, mask, phrases, plen, min_words, max_word, row):
    """C4's tests on one stripped, non-blank line, in C4's order (DataTrove C4QualityFilter)."""
    line_chars = se - ss
    row[C4_LINE_CHARS] += line_chars
    js = mask & 2 and _has_phrase(cp, ss, se, phrases, plen, 1)
    row[C4_JS_LINES] += js
    policy = False
    for k in range(2, phrases.shape[0]):
        if mask & (1 << k) and _has_phrase(cp, ss, se, phrases, plen, k):
            policy = True
    row[C4_POLICY_LINES] += policy
    words, longest, w = 0, 0, 0
    for i in range(ss, se + 1):
        if i < se and not flag_of(flags, cp[i]) & SPACE:
            w += 1
        elif w:
            words += 1
            longest = max(longest, w)
            w = 0
    if longest > max_word:
        return
    # Citations ("[1]", "[edit]", "[citation needed]") come off before the end test; what
    # precedes them is not stripped again, as in DataTrove.
    end = se
    while end > ss and cp[end - 1] == 93:
        j = end - 2
        while j > ss and 48 <= cp[j] <= 57:
            j -= 1
        if j >= ss and cp[j] == 91:
            end = j
        elif _cites(cp, ss, end, "[edit]"):
            end -= 6
        elif _cites(cp, ss, end, "[citation needed]"):
            end -= 17
        else:
            break
    if end == ss or cp[end - 1] not in (46, 63, 33, 34, 39):
        return
    if end - ss >= 3 and cp[end - 1] == 46 and cp[end - 2] == 46 and cp[end - 3] == 46:
        return
    if words < min_words:
        return
    if mask & 1 and _has_phrase(cp, ss, se, phrases, plen, 0):
        row[C4_LOREM] += 1
    if js:
        return
    for i in range(ss, se):
        row[C4_CURLY] += cp[i] == 123
    if policy:
        return
    # spaCy's sentencizer: a sentence ends at a token of SENT_END characters and the next
    # starts at the first token after it that is not punctuation.
    sentences, seen_end = 1, False
    for k in range(t0, t1):
        one = tl[k] == 1 and (flag_of(flags, cp[ts[k]]) & SENT_END) != 0
        punct = True
        for i in range(ts[k], ts[k] + tl[k]):
            punct = punct and (flag_of(flags, cp[i]) & IS_PUNCT) != 0
        if seen_end and not punct and not one:
            sentences += 1
            seen_end = False
        elif one:
            seen_end = True
    row[C4_SENTENCES] += sentences
    row[C4_KEPT_CHARS] += line_chars


@njit(cache=True)
def _ends_sentence(cp, ls, le, flags):
    """FineWeb's line-end test: a terminal mark (DataTrove's set), which may stand inside
    closing quotes or a bracket ('said so."'), where DataTrove wants the mark last."""
    j = le - 1
    while j > ls and cp[j] in (34, 39, 0x201D, 0x2019, 0xBB, 41, 93):
        j -= 1
    return (flag_of(flags, cp[j]) & TERMINAL) != 0


@njit(cache=True)
def _cites(cp, ss, end, word):
    m = len(word)
    if end - ss < m:
        return False
    for k in range(m):  # noqa: SIM110 (numba: no generator expressions)
        if cp[end - m + k] != ord(word[k]):
            return False
    return True
