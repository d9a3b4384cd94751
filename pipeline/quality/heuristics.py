"""Document quality scores: Gopher's quality rules, C4's line rules, FineWeb's line rules.

Pure functions from a text to {score column: value}; the thresholds live in
pipeline/quality/config.py and the decisions in pipeline/quality/rules.py. Words are
whitespace tokens (no NLTK: no tokenizer models to ship); a "word" for the counts has at least
one letter or digit, and its length is measured without surrounding punctuation.

    words = text.split()
    gopher_quality_scores(text, words, stop_words={"the", "and", ...})
    c4_scores(text, min_words_per_line=5)
    fineweb_scores(text, words, short_line_chars=30)
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence

from pipeline import schema as S
from pipeline.quality.repetition import dup_fracs, nonblank_lines

_PUNCT = string.punctuation + "“”‘’«»—–…"
# Bullets as they appear in extracted web text; '-' and '*' are the Markdown/plain ones.
_BULLETS = ("•", "●", "◦", "‣", "▪", "■", "□", "➢", "–", "- ", "* ")
_ELLIPSES = ("...", "…")
# C4 keeps lines ending with one of these (its "terminal punctuation mark") [C4]; FineWeb's
# list adds the apostrophe (a closing single quote) [FineWeb].
C4_TERMINAL = (".", "!", "?", '"', "”")
FINEWEB_TERMINAL = (".", "!", "?", '"', "'", "”", "’")
_CITATION = re.compile(r"\[\d*\]|\[edit\]|\[citation needed\]", re.I)
_POLICY = ("terms of use", "privacy policy", "cookie policy", "uses cookies",
           "use of cookies", "use cookies")  # fmt: skip  # C4's list (its released code)
# A sentence ends at . ! ? (optionally followed by closing quotes/brackets) before a space or
# the end: a plain-regex stand-in for NLTK's punkt, good enough to count to five.
_SENTENCE_END = re.compile(r"[.!?]+[\"'”’)\]]*(?=\s|$)")


def is_word(token: str) -> bool:
    return any(c.isalnum() for c in token)


def gopher_quality_scores(text: str, words: Sequence[str], stop_words: set[str]) -> dict:
    real = [w for w in words if is_word(w)]
    n = len(real)
    lines = nonblank_lines(text)
    stripped = [w.strip(_PUNCT) for w in real]
    return {
        S.Q_WORDS: n,
        S.Q_MEAN_WORD_LENGTH: sum(map(len, stripped)) / n if n else 0.0,
        S.Q_HASH_RATIO: text.count("#") / max(n, 1),
        S.Q_ELLIPSIS_RATIO: sum(text.count(e) for e in _ELLIPSES) / max(n, 1),
        S.Q_BULLET_LINES: _share(lines, lambda line: line.startswith(_BULLETS)),
        S.Q_ELLIPSIS_LINES: _share(lines, lambda line: line.endswith(_ELLIPSES)),
        S.Q_ALPHA_WORDS: _share(words, lambda w: any(c.isalpha() for c in w)),
        S.Q_STOP_WORDS: len(stop_words.intersection(w.lower() for w in stripped)),
    }


def c4_prose_line(line: str, min_words: int) -> bool:
    """C4's first line tests [C4]: ends in an end mark (not '...'), enough words, no word over
    1,000 characters. C4 checks 'lorem ipsum' and '{' only on such lines."""
    words = line.split()
    if len(words) < min_words or any(len(w) > 1000 for w in words):
        return False
    line = _CITATION.sub("", line).rstrip()
    return line.endswith(C4_TERMINAL) and not line.endswith(_ELLIPSES)


def _boilerplate(line: str) -> bool:
    lower = line.lower()
    return "javascript" in lower or any(p in lower for p in _POLICY)


def c4_scores(text: str, min_words_per_line: int) -> dict:
    lines = nonblank_lines(text)
    prose = [line for line in lines if c4_prose_line(line, min_words_per_line)]
    kept = [line for line in prose if not _boilerplate(line)]
    return {
        S.Q_C4_SENTENCES: sum(max(1, len(_SENTENCE_END.findall(line))) for line in kept),
        S.Q_C4_KEPT_CHAR_FRAC: sum(map(len, kept)) / max(sum(map(len, lines)), 1),
        S.Q_C4_LOREM_IPSUM: sum("lorem ipsum" in line.lower() for line in prose),
        S.Q_C4_CURLY_BRACES: sum(line.count("{") for line in prose),
        S.Q_C4_JAVASCRIPT_LINES: _share(lines, lambda line: "javascript" in line.lower()),
        S.Q_C4_POLICY_LINES: _share(lines, lambda line: any(p in line.lower() for p in _POLICY)),
    }


def fineweb_scores(text: str, words: Sequence[str], short_line_chars: int) -> dict:
    lines = nonblank_lines(text)
    _, dup_chars = dup_fracs(lines)
    # FineWeb divides the repeated lines' characters by the text's without newlines.
    dup_char_count = dup_chars * sum(map(len, lines))
    return {
        S.Q_LINE_PUNCT_FRAC: _share(lines, lambda line: line.endswith(FINEWEB_TERMINAL)),
        S.Q_SHORT_LINE_FRAC: _share(lines, lambda line: len(line) <= short_line_chars),
        S.Q_FW_DUP_LINE_CHAR_FRAC: dup_char_count / max(len(text) - text.count("\n"), 1),
        S.Q_NEWLINE_WORD_RATIO: text.count("\n") / max(len(words), 1),
    }


def _share(items: Sequence[str], predicate) -> float:
    return sum(1 for x in items if predicate(x)) / len(items) if items else 0.0
