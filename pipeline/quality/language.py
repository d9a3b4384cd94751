"""Language identification with py3langid: langid.py's naive Bayes model (97 languages),
shipped inside the wheel (`py3langid/data/model.npz.xz`), so it works offline.

fastText's lid.176 (what FineWeb and CCNet use) is a download from a model hub; none of
the PyPI fastText builds ships it, and nothing here may download a model.

py3langid walks its byte automaton in a Python loop (about 1 MB/s) and multiplies float16
rows (slower still): here both run in numba over a float32 copy of the model (57 MB), and the
rest (normalising, the probabilities, the labels) is py3langid's own code.

    identify("The cat sat on the mat.")      # -> ("en", 0.99...)
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numba import njit


@njit(cache=True)
def _naive_bayes(nextmove, rowbase, output, table, data, counts, touched):
    """Walk the byte automaton, counting features; then sum log1p(count) x each feature's row
    of the model (py3langid's `log1p(counts) @ nb_ptc[features]`). None found: -1."""
    state, n_touched = 0, 0
    for b in data:
        state = nextmove[rowbase[state] + b]
        feature = output[state]
        if feature >= 0:
            if counts[feature] == 0:
                touched[n_touched] = feature
                n_touched += 1
            counts[feature] += 1
    scores = np.zeros(table.shape[1], dtype=np.float32)
    for k in range(n_touched):
        f = touched[k]
        w = np.float32(np.log1p(np.float32(counts[f])))
        for j in range(table.shape[1]):
            scores[j] += w * table[f, j]
        counts[f] = 0
    return scores, n_touched


@lru_cache(maxsize=1)
def _identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    class CompiledWalk(LanguageIdentifier):
        """py3langid's identifier with its `_raw_score` automaton walk compiled."""

        __slots__ = ("_tables",)

        def _raw_score(self, text: bytes) -> np.ndarray:
            if not hasattr(self, "_tables"):
                # int32, not int64: the walk chases one pointer per byte through a transition
                # table of 10M entries; at 39 MB rather than 78 more of it stays in cache
                # (the whole language id about 1.3x faster on 3.5 KB documents). Every value,
                # a state, an offset or a feature id, is below 2**31; astype would wrap one
                # that is not silently, so the maxima are compared below.
                walk = [
                    np.asarray(t).astype(np.int32, casting="same_kind")
                    for t in (self.tk_nextmove, self._rowbase, self.tk_output)
                ]
                if any(
                    int(w.max()) != int(np.max(t))
                    for w, t in zip(
                        walk, (self.tk_nextmove, self._rowbase, self.tk_output), strict=True
                    )
                ):
                    raise ValueError("py3langid's automaton no longer fits in int32")
                # float32: numpy's float16 product is 5x slower than the whole walk.
                table = np.ascontiguousarray(self.nb_ptc, dtype=np.float32)
                scratch = (np.zeros(len(table), np.int64), np.empty(len(table), np.int64))
                self._tables = (*walk, table, *scratch)
            nextmove, rowbase, output, table, counts, touched = self._tables
            data = np.frombuffer(text, np.uint8)
            scores, found = _naive_bayes(nextmove, rowbase, output, table, data, counts, touched)
            if found == 0:
                return super()._raw_score(text)  # py3langid's floor for featureless text
            return scores + self.nb_pc

    # norm_probs: a probability over the languages, comparable across text lengths.
    return CompiledWalk.from_model_file(MODEL_FILE, norm_probs=True)


def identify(text: str, max_chars: int = 20_000) -> tuple[str, float]:
    """(ISO 639-1 code, probability) of the text's first `max_chars` characters."""
    sample = text[:max_chars]
    if not sample.strip():
        return "und", 0.0
    language, probability = _identifier().classify(sample)
    return str(language), float(probability)
