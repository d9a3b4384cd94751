"""Character classes of the quality rules, as one flag table the numba kernels index by code point.

The rules are the ones DataTrove implements (pipeline/config/quality.py names the papers), so the
classes are DataTrove's and those of the word splitter its English filters use (spaCy's blank
"en" tokenizer and sentencizer), written out here: neither is a dependency.

    flags = char_flags()                     # uint16 per code point below 0x10000
    flags[ord(".")] & TERMINAL               # != 0
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

import numpy as np

ALPHA, LOWER, UPPER, SPACE = 1, 2, 4, 8
PUNCT_SET = 16  # DataTrove's PUNCTUATION_SET: a word made only of these is a symbol, not a word
TERMINAL = 32  # DataTrove's TERMINAL_PUNCTUATION: FineWeb's line-end marks
SENT_END = 64  # spaCy's sentencizer punct_chars: a token of one ends a sentence
IS_PUNCT = 128  # Unicode category P*: spaCy's is_punct (sentencizer skips these after an end)
AFFIX = 256  # spaCy English prefix-and-suffix characters (punctuation, quotes, dashes, icons)
PREFIX = 512  # prefix-only: § % = + and currency signs
DIGIT = 1024  # ASCII 0-9 (spaCy's [0-9])
ICON = 2048  # Unicode category So: split off wherever it stands (spaCy's LIST_ICONS)

# (first, last) code points, from DataTrove 0.10.1 datatrove/utils/text.py (Apache-2.0).
_TERMINAL_RANGES = (
    (0x21, 0x21), (0x2E, 0x2E), (0x3F, 0x3F), (0x589, 0x589), (0x61D, 0x61F), (0x6D4, 0x6D4),
    (0x700, 0x702), (0x7F9, 0x7F9), (0x837, 0x837), (0x839, 0x839), (0x83D, 0x83E),
    (0x964, 0x965), (0x104A, 0x104B), (0x1362, 0x1362), (0x1367, 0x1368), (0x166E, 0x166E),
    (0x1735, 0x1736), (0x17D4, 0x17D6), (0x17D9, 0x17DA), (0x1803, 0x1803), (0x1809, 0x1809),
    (0x1944, 0x1945), (0x1AA8, 0x1AAB), (0x1B5A, 0x1B5B), (0x1B5E, 0x1B5F), (0x1B7D, 0x1B7E),
    (0x1C3B, 0x1C3C), (0x1C7E, 0x1C7F), (0x203C, 0x203D), (0x2047, 0x2049), (0x2E2E, 0x2E2E),
    (0x2E3C, 0x2E3C), (0x2E53, 0x2E54), (0x3002, 0x3002), (0xA4FF, 0xA4FF), (0xA60E, 0xA60F),
    (0xA6F3, 0xA6F3), (0xA6F7, 0xA6F7), (0xA876, 0xA877), (0xA8CE, 0xA8CF), (0xA92F, 0xA92F),
    (0xA9C8, 0xA9C9), (0xAA5D, 0xAA5F), (0xAAF0, 0xAAF1), (0xABEB, 0xABEB), (0xFE52, 0xFE52),
    (0xFE56, 0xFE57), (0xFF01, 0xFF01), (0xFF0E, 0xFF0E), (0xFF1F, 0xFF1F), (0xFF61, 0xFF61),
)  # fmt: skip  # and 31 ranges above 0xFFFF (Brahmi, Sharada, ...), not tabled here
# DataTrove's PUNCTUATION string; PUNCTUATION_SET is it plus the terminal marks.
_PUNCT_RANGES = (
    (0x00, 0x08), (0x0B, 0x1F), (0x21, 0x2F), (0x3A, 0x40), (0x5B, 0x60), (0x7B, 0x9F),
    (0xAB, 0xAB), (0xB4, 0xB4), (0xBB, 0xBB), (0x2013, 0x2014), (0x2019, 0x2019),
    (0x201C, 0x201E), (0x2026, 0x2026), (0x2236, 0x2236), (0x2501, 0x2501), (0x25BA, 0x25BA),
    (0x3001, 0x3001), (0x3008, 0x300D), (0x3010, 0x3011), (0xFF05, 0xFF05), (0xFF08, 0xFF09),
    (0xFF0C, 0xFF0C), (0xFF11, 0xFF11), (0xFF1A, 0xFF1B), (0xFF5E, 0xFF5E),
)  # fmt: skip
# spaCy 3.8 Sentencizer.default_punct_chars (MIT) below 0x10000.
_SENT_END_RANGES = (
    (0x21, 0x21), (0x2E, 0x2E), (0x3F, 0x3F), (0x589, 0x589), (0x61F, 0x61F), (0x6D4, 0x6D4),
    (0x700, 0x702), (0x7F9, 0x7F9), (0x964, 0x965), (0x104A, 0x104B), (0x1362, 0x1362),
    (0x1367, 0x1368), (0x166E, 0x166E), (0x1735, 0x1736), (0x1803, 0x1803), (0x1809, 0x1809),
    (0x1944, 0x1945), (0x1AA8, 0x1AAB), (0x1B5A, 0x1B5B), (0x1B5E, 0x1B5F), (0x1C3B, 0x1C3C),
    (0x1C7E, 0x1C7F), (0x203C, 0x203D), (0x2047, 0x2049), (0x2E2E, 0x2E2E), (0x2E3C, 0x2E3C),
    (0x3002, 0x3002), (0xA4FF, 0xA4FF), (0xA60E, 0xA60F), (0xA6F3, 0xA6F3), (0xA6F7, 0xA6F7),
    (0xA876, 0xA877), (0xA8CE, 0xA8CF), (0xA92F, 0xA92F), (0xA9C8, 0xA9C9), (0xAA5D, 0xAA5F),
    (0xAAF0, 0xAAF1), (0xABEB, 0xABEB), (0xFE52, 0xFE52), (0xFE56, 0xFE57), (0xFF01, 0xFF01),
    (0xFF0E, 0xFF0E), (0xFF1F, 0xFF1F), (0xFF61, 0xFF61),
)  # fmt: skip
# spaCy's English LIST_PUNCT, LIST_QUOTES and the two dashes: split off either end of a word.
_AFFIX_CHARS = (
    "…,:;!?¿؟¡()[]{}<>_#*&。？！，、；：～·।،۔؛٪'\"”“`‘´’‚„»«「」『』（）〔〕【】《》〈〉〈〉⟦⟧—–"
)
_PREFIX_CHARS = "§%=+$£€¥฿₽﷼"  # and the currency block U+20A0..U+20BF
# spaCy's English tokenizer exceptions that keep a final period a lowercase letter or digit
# would otherwise split off (single letters "a." ... "z." and "1a.m." forms are rules below).
ABBREVIATIONS = (
    (  # noqa: SIM905 (a list literal would take 12 lines)
        "Adm. Ak. Ala. Apr. Ariz. Ark. Aug. Bros. Calif. Co. Colo. Conn. Corp. Dec. Del. Dr. E.g. "
        "Feb. Fla. Ga. Gen. Gov. I.e. Ia. Id. Ill. Inc. Ind. Jan. Jr. Jul. Jun. Kan. Kans. Ky. La. "
        "Ltd. Mar. Mass. Md. Messrs. Mich. Minn. Miss. Mo. Mont. Mr. Mrs. Ms. Mt. Neb. Nebr. Nev. "
        "Nov. Oct. Okla. Ore. Pa. Prof. Rep. Rev. Sen. Sep. Sept. St. Tenn. Va. Wash. Wis. a.m. "
        "co. e.g. i.e. p.m. v.s. vs. °c. °f. °k."
    ).split()
    + [f"{c}." for c in "abcdefghijklmnopqrstuvwxyzäöü"]
    + [f"{h}{m}" for h in range(1, 13) for m in ("a.m.", "p.m.")]
)


def _mark(table: np.ndarray, ranges, flag: int) -> None:
    for lo, hi in ranges:
        table[lo : hi + 1] |= flag


@lru_cache(maxsize=1)
def char_flags() -> np.ndarray:
    """uint16 flags per BMP code point (the kernels treat higher ones as letters unless they
    are emoji or symbols, U+1F000..U+1FFFF)."""
    table = np.zeros(0x10000, dtype=np.uint16)
    for c in range(0x10000):
        ch = chr(c)
        if ch.isalpha():
            table[c] |= ALPHA
            table[c] |= LOWER if not ch.isupper() else 0
            table[c] |= UPPER if not ch.islower() else 0
        elif ch.isspace():
            table[c] |= SPACE
        else:
            cat = unicodedata.category(ch)
            if cat[0] == "P":
                table[c] |= IS_PUNCT
            elif cat == "So":
                table[c] |= ICON | AFFIX
            elif cat == "Sc":
                table[c] |= PREFIX
    _mark(table, _TERMINAL_RANGES, TERMINAL | PUNCT_SET)
    _mark(table, _PUNCT_RANGES, PUNCT_SET)
    _mark(table, _SENT_END_RANGES, SENT_END)
    _mark(table, [(0x30, 0x39)], DIGIT)
    for ch in _AFFIX_CHARS:
        table[ord(ch)] |= AFFIX
    for ch in _PREFIX_CHARS:
        table[ord(ch)] |= PREFIX
    return table
