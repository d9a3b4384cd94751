"""The quality stage's rules on raw documents (pipeline/score_rules.py's Rule): each enabled
family of QualityConfig as named thresholds on the score columns.

    rules = quality_rules(QualityConfig())
    failed = failing_rules(scores, rules, skip=["c4_*"])        # pipeline.score_rules
"""

from __future__ import annotations

from pipeline import schema as S
from pipeline.config.quality import QualityConfig
from pipeline.score_rules import Rule, bounded


def quality_rules(cfg: QualityConfig) -> list[Rule]:
    """Every enabled rule, in the order that picks the reason: language first (the other
    rules assume English), then Gopher quality, Gopher repetition, C4, FineWeb, classifier."""
    rules: list[Rule] = []
    lang = cfg.language
    if lang.enabled:
        rules.append(Rule("language", S.LANGUAGE, "in", allowed=tuple(lang.accepted)))
        rules += bounded("language_score", S.LANGUAGE_SCORE, "min", lang.min_score)
    g = cfg.gopher
    if g.enabled:
        for spec in (
            ("gopher_too_few_words", S.Q_WORDS, "min", g.min_words),
            ("gopher_too_many_words", S.Q_WORDS, "max", g.max_words),
            ("gopher_short_words", S.Q_MEAN_WORD_LENGTH, "min", g.min_mean_word_length),
            ("gopher_long_words", S.Q_MEAN_WORD_LENGTH, "max", g.max_mean_word_length),
            ("gopher_hash_symbols", S.Q_HASH_RATIO, "max", g.max_hash_ratio),
            ("gopher_ellipsis_symbols", S.Q_ELLIPSIS_RATIO, "max", g.max_ellipsis_ratio),
            ("gopher_bullet_lines", S.Q_BULLET_LINES, "max", g.max_bullet_lines),
            ("gopher_ellipsis_lines", S.Q_ELLIPSIS_LINES, "max", g.max_ellipsis_lines),
            ("gopher_non_alpha_words", S.Q_ALPHA_WORDS, "min", g.min_alpha_words),
            ("gopher_stop_words", S.Q_STOP_WORDS, "min", g.min_stop_words),
        ):
            rules += bounded(*spec)
    r = cfg.repetition
    if r.enabled:
        for spec in (
            ("gopher_dup_lines", S.Q_DUP_LINE_FRAC, "max", r.max_dup_line_frac),
            ("gopher_dup_paragraphs", S.Q_DUP_PARA_FRAC, "max", r.max_dup_para_frac),
            ("gopher_dup_line_chars", S.Q_DUP_LINE_CHAR_FRAC, "max", r.max_dup_line_char_frac),
            ("gopher_dup_paragraph_chars", S.Q_DUP_PARA_CHAR_FRAC, "max", r.max_dup_para_char_frac),
        ):
            rules += bounded(*spec)
        for n, column in S.Q_TOP_NGRAM.items():
            rules += bounded(
                f"gopher_top_{n}gram", column, "max", getattr(r, f"max_top_{n}gram_char_frac")
            )
        for n, column in S.Q_DUP_NGRAM.items():
            rules += bounded(
                f"gopher_dup_{n}gram", column, "max", getattr(r, f"max_dup_{n}gram_char_frac")
            )
    c4 = cfg.c4
    if c4.enabled:
        if c4.drop_lorem_ipsum:
            rules.append(Rule("c4_lorem_ipsum", S.Q_C4_LOREM_IPSUM, "max", 0))
        if c4.drop_curly_brace:
            rules.append(Rule("c4_curly_brace", S.Q_C4_CURLY_BRACES, "max", 0))
        for spec in (
            ("c4_javascript_lines", S.Q_C4_JAVASCRIPT_LINES, "max", c4.max_javascript_lines),
            ("c4_policy_lines", S.Q_C4_POLICY_LINES, "max", c4.max_policy_lines),
            ("c4_too_few_sentences", S.Q_C4_SENTENCES, "min", c4.min_sentences),
            ("c4_line_filter", S.Q_C4_KEPT_CHAR_FRAC, "min", c4.min_kept_char_frac),
        ):
            rules += bounded(*spec)
    fw = cfg.fineweb
    if fw.enabled:
        for spec in (
            ("fineweb_line_punct", S.Q_LINE_PUNCT_FRAC, "min", fw.min_line_punct_frac),
            ("fineweb_short_lines", S.Q_SHORT_LINE_FRAC, "max", fw.max_short_line_frac),
            ("fineweb_dup_line_chars", S.Q_FW_DUP_LINE_CHAR_FRAC, "max", fw.max_dup_line_char_frac),
            ("fineweb_list_like", S.Q_NEWLINE_WORD_RATIO, "max", fw.max_newline_word_ratio),
        ):
            rules += bounded(*spec)
    if cfg.classifier.path is not None:
        rules += bounded("classifier_score", S.QUALITY_SCORE, "min", cfg.classifier.min_score)
    return rules
