"""Language identification with py3langid: langid.py's naive Bayes model (97 languages),
shipped inside the wheel (`py3langid/data/model.npz.xz`), so it works offline.

fastText's lid.176 (what FineWeb and CCNet use) is a download from a model hub; none of
the PyPI fastText builds ships it, and nothing here may download a model.

    identify("The cat sat on the mat.")      # -> ("en", 0.99...)
"""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def _identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    # norm_probs: a probability over the languages, comparable across text lengths.
    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def identify(text: str, max_chars: int = 20_000) -> tuple[str, float]:
    """(ISO 639-1 code, probability) of the text's first `max_chars` characters."""
    sample = text[:max_chars]
    if not sample.strip():
        return "und", 0.0
    language, probability = _identifier().classify(sample)
    return str(language), float(probability)
