"""Document quality scores, a batch at a time: Gopher quality and repetition, C4, FineWeb.

The counts come from one numba pass (pipeline/quality/textstats.py); this module divides them
into the score columns of pipeline/schema.py, with numpy over the whole batch. Thresholds live
in pipeline/config/quality.py and the decisions in rules.py.

The definitions are DataTrove's (its GopherQualityFilter, GopherRepetitionFilter,
C4QualityFilter and FineWebQualityFilter, English), the implementations most users compare
with; where the project differs on purpose (two rules), config.py says so at the threshold:
- words: spaCy-like tokens (pipeline/quality/words.py), punctuation tokens included; a "word"
  for the counts and the mean length has a character outside DataTrove's punctuation set.
  '#' and ellipses per token, stop words matched as written. Deliberately apart: the share
  of words with a letter is over words, as Gopher says, where DataTrove counts every token
  (so its punctuation tokens count as words without a letter).
- Gopher's lines are str.splitlines() (blank lines count); bullets are "•" or "-".
- repetition: lines split at runs of newlines, paragraphs at two or more; characters per
  character of the whole text; the top n-gram is its characters (words joined by spaces)
  times its count; repeated n-grams as DataTrove scans them (after a repeat, skip n words).
- C4: DataTrove's line tests in its order; the sentences of the kept lines as spaCy's
  sentencizer splits them. The stage drops a document instead of editing it.
- FineWeb: lines are the non-blank ones, unstripped; repeated lines' characters per character
  of the text without newlines. Deliberately apart: a line that ends in DataTrove's terminal
  punctuation inside closing quotes or brackets ('said so."') ends a sentence here.

    stats = text_stats(batch["text"], params_for(cfg))
    scores = quality_scores(stats, cfg)          # {column: numpy array}, enabled families only
"""

from __future__ import annotations

import numpy as np

from pipeline import schema as S
from pipeline.config.quality import QualityConfig
from pipeline.quality.textstats import (
    ALPHA_TOKENS,
    BULLET_LINES,
    C4_CURLY,
    C4_JS_LINES,
    C4_KEPT_CHARS,
    C4_LINE_CHARS,
    C4_LOREM,
    C4_POLICY_LINES,
    C4_SENTENCES,
    CHARS,
    DUP_NGRAM,
    DUP_PARA_CHARS,
    DUP_PARAS,
    DUP_RLINE_CHARS,
    DUP_RLINES,
    ELLIPSES,
    ELLIPSIS_LINES,
    FW_DUP_CHARS,
    FW_LINES,
    FW_PUNCT_LINES,
    FW_SHORT_LINES,
    HASHES,
    LINES,
    NEWLINES,
    PARAS,
    RLINES,
    STOP_WORDS,
    TOKENS,
    TOP_NGRAM,
    WORD_CHARS,
    WORDS,
    TextStatsParams,
)


def params_for(cfg: QualityConfig) -> TextStatsParams:
    return TextStatsParams(
        stop_words=tuple(cfg.gopher.stop_words),
        short_line_chars=cfg.fineweb.short_line_chars,
        min_words_per_line=cfg.c4.min_words_per_line,
    )


def _ratio(num: np.ndarray, den: np.ndarray, empty: float = 0.0) -> np.ndarray:
    out = np.full(num.shape, empty, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def quality_scores(stats: np.ndarray, cfg: QualityConfig) -> dict[str, np.ndarray]:
    col = stats.T
    tokens, chars = col[TOKENS], col[CHARS]
    out: dict[str, np.ndarray] = {}
    if cfg.gopher.enabled:
        out[S.Q_WORDS] = col[WORDS].astype(np.int64)
        # No words: no mean to judge (NaN), as DataTrove's np.mean of nothing.
        out[S.Q_MEAN_WORD_LENGTH] = _ratio(col[WORD_CHARS], col[WORDS], np.nan)
        out[S.Q_HASH_RATIO] = _ratio(col[HASHES], tokens)
        out[S.Q_ELLIPSIS_RATIO] = _ratio(col[ELLIPSES], tokens)
        out[S.Q_BULLET_LINES] = _ratio(col[BULLET_LINES], col[LINES])
        out[S.Q_ELLIPSIS_LINES] = _ratio(col[ELLIPSIS_LINES], col[LINES])
        # Of the words (a token with a letter is one), not of all tokens as DataTrove: Gopher's
        # "80% of words"; DataTrove's punctuation tokens drop 10% of real Wikipedia articles.
        out[S.Q_ALPHA_WORDS] = _ratio(col[ALPHA_TOKENS], col[WORDS])
        out[S.Q_STOP_WORDS] = col[STOP_WORDS].astype(np.int64)
    if cfg.repetition.enabled:
        out[S.Q_DUP_LINE_FRAC] = _ratio(col[DUP_RLINES], col[RLINES])
        out[S.Q_DUP_LINE_CHAR_FRAC] = _ratio(col[DUP_RLINE_CHARS], chars)
        out[S.Q_DUP_PARA_FRAC] = _ratio(col[DUP_PARAS], col[PARAS])
        out[S.Q_DUP_PARA_CHAR_FRAC] = _ratio(col[DUP_PARA_CHARS], chars)
        for n, column in S.Q_TOP_NGRAM.items():
            out[column] = _ratio(col[TOP_NGRAM[n]], chars)
        for n, column in S.Q_DUP_NGRAM.items():
            out[column] = _ratio(col[DUP_NGRAM[n]], chars)
    if cfg.c4.enabled:
        out[S.Q_C4_SENTENCES] = col[C4_SENTENCES].astype(np.int64)
        out[S.Q_C4_KEPT_CHAR_FRAC] = _ratio(col[C4_KEPT_CHARS], col[C4_LINE_CHARS])
        out[S.Q_C4_LOREM_IPSUM] = col[C4_LOREM].astype(np.int64)
        out[S.Q_C4_CURLY_BRACES] = col[C4_CURLY].astype(np.int64)
        out[S.Q_C4_JAVASCRIPT_LINES] = _ratio(col[C4_JS_LINES], col[FW_LINES])
        out[S.Q_C4_POLICY_LINES] = _ratio(col[C4_POLICY_LINES], col[FW_LINES])
    if cfg.fineweb.enabled:
        out[S.Q_LINE_PUNCT_FRAC] = _ratio(col[FW_PUNCT_LINES], col[FW_LINES])
        out[S.Q_SHORT_LINE_FRAC] = _ratio(col[FW_SHORT_LINES], col[FW_LINES])
        out[S.Q_FW_DUP_LINE_CHAR_FRAC] = _ratio(col[FW_DUP_CHARS], chars - col[NEWLINES])
        out[S.Q_NEWLINE_WORD_RATIO] = _ratio(col[NEWLINES], tokens)
    return out
