"""Language identification with py3langid: langid.py's naive Bayes model (97 languages),
shipped inside the wheel (`py3langid/data/model.npz.xz`), so it works offline.

fastText's lid.176 (what FineWeb and CCNet use) is a download from a model hub; none of
the PyPI fastText builds ships it, and nothing here may download a model.

py3langid walks its byte automaton in a Python loop (about 1 MB/s) and multiplies float16
rows (slower still): here one numba call per batch walks every text and sums its features'
rows, and numpy normalises the whole batch at once, as py3langid's `_decide` does one text;
py3langid's own code still normalises the text (`_encode`: NFC, all-capitals lowered).

    identify("The cat sat on the mat.")                  # -> ("en", 0.99...)
    languages, probabilities = identify_batch(texts)     # a list of labels, float64 array
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from numba import njit

# Texts walked side by side: each byte's step waits on the last one's load from a 39 MB table
# (a cache miss most of the time), while the texts' walks are independent, so the loads of
# eight of them are in flight together.
LANES = 8


@njit(cache=True)
def _walk(nextmove, rowbase, output, data, offsets, features, n_features):
    """Walk the byte automaton over every text data[offsets[d]:offsets[d + 1]], LANES texts
    at a time, writing the features each meets, in order, to features[offsets[d]:] (a text
    meets at most one per byte) and their number to n_features[d]."""
    n_texts = offsets.shape[0] - 1
    text = np.full(LANES, -1, dtype=np.int64)
    pos = np.zeros(LANES, dtype=np.int64)
    state = np.zeros(LANES, dtype=np.int64)
    found = np.zeros(LANES, dtype=np.int64)
    upcoming, active = 0, 0
    for lane in range(LANES):
        while upcoming < n_texts and offsets[upcoming] == offsets[upcoming + 1]:
            upcoming += 1  # an empty text meets nothing (n_features starts at 0)
        if upcoming < n_texts:
            text[lane], pos[lane], state[lane], found[lane] = upcoming, offsets[upcoming], 0, 0
            upcoming += 1
            active += 1
    while active > 0:
        for lane in range(LANES):
            d = text[lane]
            if d < 0:
                continue
            s = nextmove[rowbase[state[lane]] + data[pos[lane]]]
            state[lane] = s
            feature = output[s]
            if feature >= 0:
                features[offsets[d] + found[lane]] = feature
                found[lane] += 1
            pos[lane] += 1
            if pos[lane] == offsets[d + 1]:
                n_features[d] = found[lane]
                while upcoming < n_texts and offsets[upcoming] == offsets[upcoming + 1]:
                    upcoming += 1
                if upcoming < n_texts:
                    text[lane], pos[lane], state[lane], found[lane] = (
                        upcoming,
                        offsets[upcoming],
                        0,
                        0,
                    )
                    upcoming += 1
                else:
                    text[lane] = -1
                    active -= 1


@njit(cache=True)
def _naive_bayes(table, prior, features, offsets, n_features, counts, touched):
    """Per text, log1p(count) x each feature's row of the model summed, plus the prior
    (py3langid's `log1p(counts) @ nb_ptc[features] + nb_pc`), in the order the text first
    showed its features. A text without one keeps a row of zeros (py3langid's floor under
    norm_probs)."""
    n_texts, n_classes = offsets.shape[0] - 1, table.shape[1]
    scores = np.zeros((n_texts, n_classes), dtype=np.float32)
    for d in range(n_texts):
        n_touched = 0
        for i in range(offsets[d], offsets[d] + n_features[d]):
            feature = features[i]
            if counts[feature] == 0:
                touched[n_touched] = feature
                n_touched += 1
            counts[feature] += 1
        if n_touched == 0:
            continue
        row = scores[d]
        for k in range(n_touched):
            f = touched[k]
            w = np.float32(np.log1p(np.float32(counts[f])))
            for j in range(n_classes):
                row[j] += w * table[f, j]
            counts[f] = 0
        for j in range(n_classes):
            row[j] += prior[j]
    return scores


class _Model:
    """py3langid's model in the arrays the kernel reads."""

    def __init__(self):
        from py3langid.langid import MODEL_FILE, LanguageIdentifier

        ident = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        # int32, not int64: the walk chases one pointer per byte through a transition table
        # of 10M entries; at 39 MB rather than 78 more of it stays in cache. Every value, a
        # state, an offset or a feature id, is below 2**31; astype would wrap one that is not
        # silently, so the maxima are compared.
        originals = (ident.tk_nextmove, ident._rowbase, ident.tk_output)
        walk = [np.asarray(t).astype(np.int32, casting="same_kind") for t in originals]
        if any(int(w.max()) != int(np.max(t)) for w, t in zip(walk, originals, strict=True)):
            raise ValueError("py3langid's automaton no longer fits in int32")
        self.nextmove, self.rowbase, self.output = walk
        # float32: numpy's float16 product is 5x slower than the whole walk, and a float16
        # row widened in the kernel (exact) measured slower than this copy (57 MB).
        self.table = np.ascontiguousarray(ident.nb_ptc, dtype=np.float32)
        self.prior = np.asarray(ident.nb_pc, dtype=np.float32)
        self.counts = np.zeros(len(self.table), np.int64)
        self.touched = np.empty(len(self.table), np.int64)
        self.classes = np.asarray(ident.nb_classes, dtype=object)
        self.alias_pairs = list(ident._alias_pairs)
        # py3langid's text normalisation, a staticmethod: holding it does not keep `ident` and
        # its own copies of the automaton (about 70 MB) alive.
        self.encode = LanguageIdentifier._encode


@lru_cache(maxsize=1)
def _model() -> _Model:
    return _Model()


def identify_batch(texts: list[str], max_chars: int = 20_000) -> tuple[list[str], np.ndarray]:
    """(ISO 639-1 code, probability) of each text's first `max_chars` characters: py3langid's
    `classify` with norm_probs, the same labels and float32 probabilities; a blank text is
    ("und", 0.0)."""
    model = _model()
    samples = [text[:max_chars] for text in texts]
    blank = np.array([not s.strip() for s in samples], dtype=bool)
    encoded = [b"" if b else model.encode(s) for s, b in zip(samples, blank, strict=True)]
    lengths = np.array([len(e) for e in encoded], dtype=np.int64)
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    data = np.frombuffer(b"".join(encoded), dtype=np.uint8)
    features = np.empty(len(data), dtype=np.int32)
    n_features = np.zeros(len(encoded), dtype=np.int64)
    _walk(model.nextmove, model.rowbase, model.output, data, offsets, features, n_features)
    scores = _naive_bayes(
        model.table, model.prior, features, offsets, n_features, model.counts, model.touched
    )
    # py3langid's _decide, a row per text: temperature sqrt(bytes), softmax, aliases folded.
    temperature = np.array([1.0 / math.sqrt(n or 1) for n in lengths], dtype=np.float32)
    scores *= temperature[:, None]
    np.exp(scores - scores.max(axis=1, keepdims=True), out=scores)
    scores /= scores.sum(axis=1, keepdims=True)
    for i, j in model.alias_pairs:
        scores[:, i] += scores[:, j]
        scores[:, j] = 0.0
    best = scores.argmax(axis=1)
    probabilities = scores[np.arange(len(texts)), best].astype(np.float64)
    languages = [str(c) for c in model.classes[best]]
    probabilities[blank] = 0.0
    for k in np.flatnonzero(blank):
        languages[k] = "und"
    return languages, probabilities


def identify(text: str, max_chars: int = 20_000) -> tuple[str, float]:
    """(ISO 639-1 code, probability) of the text's first `max_chars` characters."""
    languages, probabilities = identify_batch([text], max_chars)
    return languages[0], float(probabilities[0])
