"""Shingling: a document's set of word or character n-grams, hashed to sorted unique uint32.

One numba kernel per batch decodes the batch's UTF-8 to code points, tokenizes, hashes and
sorts, so no per-character work runs in Python. `shingle_strings` is the slow, readable
reference; `hash_shingle_string` of its strings gives exactly the kernel's hashes.

    cfg = ShingleConfig(kind="word", n=5)
    values, offsets = shingle_hashes_batch(["first doc ...", "second doc ..."], cfg)
    values[offsets[1] : offsets[2]]          # == shingle_hashes("second doc ...", cfg)

Words are runs of ASCII letters/digits and code points >= 0x80 outside `NON_WORD_RANGES`;
spaces are Python's `str.isspace()` set; punctuation "keep" makes every other character a
token, "strip" drops it. Char mode collapses whitespace runs to one space, strips the ends and
ignores `punctuation`. 1..n-1 tokens give one shingle of them all (short docs still dedup).
Token hash = fmix32(FNV-1a of its code points); shingle hash = fmix32 of an order-sensitive
xor-multiply fold of token hashes: hashing tokens first lets a shingle string hash on its own.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from datasketch.hashfunc import sha1_hash32
from numba import njit

from pipeline.config import ShingleConfig

# Code points >= 0x80 that are not word characters: punctuation, symbols and spaces that
# Unicode places in these blocks. A small fixed table rather than unicodedata categories
# keeps the kernel branch-cheap and the behaviour stable across Python/Unicode versions.
# Kept in ascending order: the kernel stops scanning at the first range above a code point.
NON_WORD_RANGES: tuple[tuple[int, int], ...] = (
    (0x0080, 0x00BF),  # C1 controls, Latin-1 punctuation and symbols (NBSP, ©, «, ¿ ...)
    (0x00D7, 0x00D7),  # multiplication sign
    (0x00F7, 0x00F7),  # division sign
    (0x1680, 0x1680),  # Ogham space mark (a Unicode space)
    (0x2000, 0x206F),  # general punctuation: spaces, dashes, quotes, ellipsis, ZWSP
    (0x3000, 0x303F),  # CJK symbols and punctuation: 、。「」 ideographic space
    (0xFF00, 0xFF0F),  # fullwidth ！＂＃ ... ／
    (0xFF1A, 0xFF20),  # fullwidth ：；＜＝＞？＠
)
_NW_LO = np.array([lo for lo, _ in NON_WORD_RANGES], dtype=np.uint32)
_NW_HI = np.array([hi for _, hi in NON_WORD_RANGES], dtype=np.uint32)

# One load instead of three range tests on the common path.
_ASCII_WORD = np.array([chr(c).isalnum() for c in range(128)], dtype=np.bool_)
_M32 = 0xFFFFFFFF
_FNV_OFFSET = 0x811C9DC5
_FNV_PRIME = 0x01000193
_FOLD_SEED = 0x9747B28C
_FOLD_MUL = 0x9E3779B1  # golden-ratio odd multiplier: spreads bits better than FNV's prime
_KINDS = ("word", "char")
_PUNCTUATION = ("strip", "keep")


@njit(cache=True, inline="always")
def fmix32(h):
    """MurmurHash3's 32-bit finalizer: an avalanching bijection (also datasketch's pre-mix)."""
    h = np.uint64(h) & np.uint64(_M32)
    h = ((h ^ (h >> np.uint64(16))) * np.uint64(0x85EBCA6B)) & np.uint64(_M32)
    h = ((h ^ (h >> np.uint64(13))) * np.uint64(0xC2B2AE35)) & np.uint64(_M32)
    return h ^ (h >> np.uint64(16))


@njit(cache=True, inline="always")
def _fnv_step(h, c):
    # No mask: the low 32 bits of uint64 xor/multiply equal the uint32 result, and fmix32
    # masks once per token. Keeps the per-character dependency chain at xor + multiply.
    return (h ^ np.uint64(c)) * np.uint64(_FNV_PRIME)


@njit(cache=True, inline="always")
def _is_space(c):
    if c <= 32:
        return c == 32 or 9 <= c <= 13 or 28 <= c <= 31
    if c < 0x85:
        return False
    return (
        c == 0x85 or c == 0xA0 or c == 0x1680 or 0x2000 <= c <= 0x200A or c == 0x2028
        or c == 0x2029 or c == 0x202F or c == 0x205F or c == 0x3000
    )  # fmt: skip


@njit(cache=True, inline="always")
def _is_word(c):
    if c < 0x80:
        return _ASCII_WORD[c]
    for k in range(_NW_LO.shape[0]):  # ranges ascend: stop at the first one above c
        if c < _NW_LO[k]:
            return True
        if c <= _NW_HI[k]:
            return False
    return True


@njit(cache=True, inline="always")
def _decode(buf, i):
    """The code point starting at byte i of (valid, Python-produced) UTF-8, and the next i."""
    b0 = np.int64(buf[i])
    if b0 < 0x80:
        return b0, i + 1
    if b0 < 0xE0:
        return ((b0 & 0x1F) << 6) | (buf[i + 1] & 0x3F), i + 2
    if b0 < 0xF0:
        return ((b0 & 0x0F) << 12) | ((buf[i + 1] & 0x3F) << 6) | (buf[i + 2] & 0x3F), i + 3
    c = ((b0 & 0x07) << 18) | ((buf[i + 1] & 0x3F) << 12) | ((buf[i + 2] & 0x3F) << 6)
    return c | (buf[i + 3] & 0x3F), i + 4


@njit(cache=True)
def _word_tokens(buf, start, end, keep_punct, tokens):
    nt = 0
    h = np.uint64(_FNV_OFFSET)
    in_word = False
    i = start
    while i < end:
        c, i = _decode(buf, i)
        if _is_word(c):
            h = _fnv_step(h, c)
            in_word = True
            continue
        if in_word:
            tokens[nt] = fmix32(h)
            nt += 1
            h = np.uint64(_FNV_OFFSET)
            in_word = False
        if keep_punct and not _is_space(c):
            tokens[nt] = fmix32(_fnv_step(np.uint64(_FNV_OFFSET), c))
            nt += 1
    if in_word:
        tokens[nt] = fmix32(h)
        nt += 1
    return nt


@njit(cache=True)
def _char_tokens(buf, start, end, tokens):
    nt = 0
    pending_space = False  # a space is written only once a non-space follows: collapse + strip
    space = fmix32(_fnv_step(np.uint64(_FNV_OFFSET), 32))
    i = start
    while i < end:
        c, i = _decode(buf, i)
        if _is_space(c):
            pending_space = nt > 0
            continue
        if pending_space:
            tokens[nt] = space
            nt += 1
            pending_space = False
        tokens[nt] = fmix32(_fnv_step(np.uint64(_FNV_OFFSET), c))
        nt += 1
    return nt


@njit(cache=True)
def _sort_u32(a, tmp):
    """Sort in place. LSD radix (4 byte passes, one histogram scan): ~10x numba's quicksort
    at a document's few hundred hashes; insertion sort below 64, where histograms dominate."""
    n = a.shape[0]
    if n < 64:
        for i in range(1, n):
            v, j = a[i], i - 1
            while j >= 0 and a[j] > v:
                a[j + 1] = a[j]
                j -= 1
            a[j + 1] = v
        return
    counts = np.zeros((4, 257), dtype=np.int64)
    for i in range(n):
        v = a[i]
        for p in range(4):
            counts[p, ((v >> (8 * p)) & 255) + 1] += 1
    src, dst = a, tmp[:n]
    for p in range(4):  # an even number of passes: the result ends back in `a`
        c = counts[p]
        for k in range(1, 257):
            c[k] += c[k - 1]
        for i in range(n):
            digit = (src[i] >> (8 * p)) & 255
            dst[c[digit]] = src[i]
            c[digit] += 1
        src, dst = dst, src


@njit(cache=True)
def _emit_shingles(tokens, nt, n, out, pos, tmp):
    """Write the doc's shingle hashes at out[pos:], sort and dedupe them; return the count."""
    if nt == 0:
        return 0
    width = min(n, nt)
    count = nt - width + 1
    for s in range(count):
        h = np.uint64(_FOLD_SEED)
        for j in range(s, s + width):
            h = (h ^ tokens[j]) * np.uint64(_FOLD_MUL)  # masked by fmix32, as above
        out[pos + s] = fmix32(h)
    seg = out[pos : pos + count]
    _sort_u32(seg, tmp)
    k = 1
    for i in range(1, count):
        if seg[i] != seg[k - 1]:
            seg[k] = seg[i]
            k += 1
    return k


@njit(cache=True)
def _shingle_kernel(buf, doc_offsets, word_mode, keep_punct, n):
    n_docs = doc_offsets.shape[0] - 1
    out = np.empty(buf.shape[0], dtype=np.uint32)  # shingles <= tokens <= code points <= bytes
    out_offsets = np.zeros(n_docs + 1, dtype=np.int64)
    longest = (doc_offsets[1:] - doc_offsets[:-1]).max() if n_docs else 0
    tokens = np.empty(longest, dtype=np.uint32)
    tmp = np.empty(longest, dtype=np.uint32)
    pos = 0
    for d in range(n_docs):
        start, end = doc_offsets[d], doc_offsets[d + 1]
        if word_mode:
            nt = _word_tokens(buf, start, end, keep_punct, tokens)
        else:
            nt = _char_tokens(buf, start, end, tokens)
        pos += _emit_shingles(tokens, nt, n, out, pos, tmp)
        out_offsets[d + 1] = pos
    return out[:pos].copy(), out_offsets


def _check(cfg: ShingleConfig) -> None:
    if cfg.kind not in _KINDS or cfg.punctuation not in _PUNCTUATION or cfg.n < 1:
        raise ValueError(f"bad {cfg}: kind in {_KINDS}, punctuation in {_PUNCTUATION}, n >= 1")


def shingle_hashes_batch(texts: Sequence[str], cfg: ShingleConfig) -> tuple[np.ndarray, np.ndarray]:
    """CSR shingle sets: uint32 `values` (each doc's sorted unique hashes) and int64 `offsets`."""
    _check(cfg)
    if cfg.lowercase:
        texts = [t.lower() for t in texts]
    # UTF-8, not UTF-32: a quarter of the bytes, and on these VMs first-touching a fresh
    # 28 MB UTF-32 buffer per 2000-doc batch cost ~10 ms of page faults (more than the encode).
    encoded = [t.encode("utf-8", "surrogatepass") for t in texts]
    doc_offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, encoded), np.int64, len(encoded)), out=doc_offsets[1:])
    buf = np.frombuffer(b"".join(encoded), dtype=np.uint8)
    return _shingle_kernel(buf, doc_offsets, cfg.kind == "word", cfg.punctuation == "keep", cfg.n)


def shingle_hashes(text: str, cfg: ShingleConfig) -> np.ndarray:
    """Sorted unique uint32 shingle hashes of one document."""
    return shingle_hashes_batch([text], cfg)[0]


# ---- Reference: slow, readable, and the source of datasketch-compatible shingle strings ----


def _py_is_word(ch: str) -> bool:
    c = ord(ch)
    if c < 0x80:
        return ch.isalnum()
    return not any(lo <= c <= hi for lo, hi in NON_WORD_RANGES)


def _py_tokens(text: str, cfg: ShingleConfig) -> list[str]:
    if cfg.kind == "char":
        return list(" ".join(text.split()))
    tokens, word = [], ""
    for ch in text:
        if _py_is_word(ch):
            word += ch
            continue
        if word:
            tokens.append(word)
            word = ""
        if cfg.punctuation == "keep" and not ch.isspace():
            tokens.append(ch)
    return [*tokens, word] if word else tokens


def shingle_strings(text: str, cfg: ShingleConfig) -> list[str]:
    """The document's shingles as strings, in order (word tokens joined by one space)."""
    _check(cfg)
    tokens = _py_tokens(text.lower() if cfg.lowercase else text, cfg)
    sep = " " if cfg.kind == "word" else ""
    width = min(cfg.n, len(tokens))
    return [sep.join(tokens[i : i + width]) for i in range(len(tokens) - width + 1) if width]


def _py_fmix32(h: int) -> int:
    h = ((h ^ (h >> 16)) * 0x85EBCA6B) & _M32
    h = ((h ^ (h >> 13)) * 0xC2B2AE35) & _M32
    return h ^ (h >> 16)


def hash_shingle_string(shingle: str, kind: str = "word") -> int:
    """The kernel's hash of one shingle string from `shingle_strings` (pure Python)."""
    tokens = shingle.split(" ") if kind == "word" else list(shingle)
    h = _FOLD_SEED
    for token in tokens:
        t = _FNV_OFFSET
        for ch in token:
            t = ((t ^ ord(ch)) * _FNV_PRIME) & _M32
        h = ((h ^ _py_fmix32(t)) * _FOLD_MUL) & _M32
    return _py_fmix32(h)


def sha1_shingle_hashes(text: str, cfg: ShingleConfig) -> np.ndarray:
    """datasketch's default hashing (sha1_hash32 of UTF-8), for indexes built with datasketch."""
    hashes = {sha1_hash32(s.encode("utf-8", "surrogatepass")) for s in shingle_strings(text, cfg)}
    return np.array(sorted(hashes), dtype=np.uint32)
