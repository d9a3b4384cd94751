"""Score documents and decide: every score as a column, the first failing rule as the reason.

scores = document_scores(text, cfg)                    # {column: value}
table = score_documents(batch, cfg)                    # batch + score + drop columns
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from pipeline import schema as S
from pipeline.quality.config import QualityConfig
from pipeline.quality.heuristics import c4_scores, fineweb_scores, gopher_quality_scores
from pipeline.quality.language import identify
from pipeline.quality.repetition import repetition_scores
from pipeline.quality.rules import Rule, failing_rules, quality_rules

SNIPPET_CHARS = 200


def document_scores(text: str, cfg: QualityConfig) -> dict[str, Any]:
    """Every enabled family's scores; a disabled family's columns are left out (null)."""
    words = text.split()
    scores: dict[str, Any] = {}
    if cfg.language.enabled:
        scores[S.LANGUAGE], scores[S.LANGUAGE_SCORE] = identify(text, cfg.language.max_chars)
    if cfg.gopher.enabled:
        scores.update(gopher_quality_scores(text, words, set(cfg.gopher.stop_words)))
    if cfg.repetition.enabled:
        scores.update(repetition_scores(text, words))
    if cfg.c4.enabled:
        scores.update(c4_scores(text, cfg.c4.min_words_per_line))
    if cfg.fineweb.enabled:
        scores.update(fineweb_scores(text, words, cfg.fineweb.short_line_chars))
    if cfg.classifier.path is not None:
        from pipeline.quality.classifier import load_classifier

        model = load_classifier(cfg.classifier.path)
        scores[S.QUALITY_SCORE] = model.score(
            text[: cfg.classifier.max_chars], cfg.classifier.positive_label
        )
    return scores


def decide(scores: dict[str, Any], rules: list[Rule], skip: list[str]) -> dict[str, Any]:
    """The drop columns for one row: reason = first failing rule, detail = its explanation."""
    failed = failing_rules(scores, rules, skip)
    first = failed[0] if failed else None
    return {
        S.QUALITY_FAILED: [r.name for r in failed],
        S.DROP_REASON: first.name if first else None,
        S.DROP_DETAIL: first.explain(scores.get(first.column)) if first else None,
    }


def score_documents(batch: pa.Table, cfg: QualityConfig) -> pa.Table:
    """A batch of document rows (any columns, `text` and `source` among them) with the score
    columns (pipeline.schema QUALITY_FIELDS) and the drop columns appended."""
    rules = quality_rules(cfg)
    columns: dict[str, list] = {f.name: [] for f in S.QUALITY_FIELDS}
    drops: dict[str, list] = {S.DROP_REASON: [], S.DROP_DETAIL: [], S.SNIPPET: []}
    texts = batch[S.TEXT].to_pylist()
    sources = batch[S.SOURCE].to_pylist()
    for text, source in zip(texts, sources, strict=True):
        scores = document_scores(text, cfg)
        decision = decide(scores, rules, cfg.skip_rules.get(source, []))
        scores[S.QUALITY_FAILED] = decision[S.QUALITY_FAILED]
        for name, values in columns.items():
            values.append(scores.get(name))
        drops[S.DROP_REASON].append(decision[S.DROP_REASON])
        drops[S.DROP_DETAIL].append(decision[S.DROP_DETAIL])
        drops[S.SNIPPET].append(text[:SNIPPET_CHARS] if decision[S.DROP_REASON] else None)
    out = batch.drop_columns([c for c in (*columns, *drops) if c in batch.column_names])
    for f in S.QUALITY_FIELDS:
        out = out.append_column(f, pa.array(columns[f.name], f.type))
    for f in S.DROP_FIELDS:
        out = out.append_column(f, pa.array(drops[f.name], f.type))
    return out
