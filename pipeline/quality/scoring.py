"""Score documents and decide, a batch at a time: every score a column, the first failing rule
the reason.

The heuristic scores come from one numba pass over the batch (pipeline/quality/textstats.py),
language id from py3langid's model in one numba call per batch (pipeline/quality/language.py),
and every rule is one numpy comparison over the batch; Python touches a document only to name
the rules it failed.

    table = score_documents(batch, cfg)                 # batch + score + drop columns
    scores = document_scores(text, cfg)                 # {column: value}, one text
    decide(scores, quality_rules(cfg), skip=[])         # the drop columns of one row
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from pipeline import schema as S
from pipeline.config.quality import QualityConfig
from pipeline.plumbing.snippets import snippet
from pipeline.quality.classifier import load_classifier
from pipeline.quality.heuristics import params_for, quality_scores
from pipeline.quality.language import identify_batch
from pipeline.quality.rules import quality_rules
from pipeline.quality.textstats import text_stats
from pipeline.score_rules import Rule, failing_rules, skipped


def batch_scores(texts: pa.Array, cfg: QualityConfig, pylist: list[str]) -> dict[str, Any]:
    """{column: numpy array or list} for every enabled family; disabled ones are left out."""
    scores: dict[str, Any] = {}
    if cfg.language.enabled:
        languages, probabilities = identify_batch(pylist, cfg.language.max_chars)
        scores[S.LANGUAGE] = np.array(languages, dtype=object)
        scores[S.LANGUAGE_SCORE] = probabilities
    families = (cfg.gopher, cfg.repetition, cfg.c4, cfg.fineweb)
    if any(f.enabled for f in families) and pylist:
        scores.update(quality_scores(text_stats(texts, params_for(cfg), pylist), cfg))
    if cfg.classifier.path is not None:
        model = load_classifier(cfg.classifier.path)
        limit, label = cfg.classifier.max_chars, cfg.classifier.positive_label
        scores[S.QUALITY_SCORE] = np.array([model.score(t[:limit], label) for t in pylist])
    return scores


def rule_fails(rule: Rule, values: Any) -> np.ndarray:
    """Rule.fails over a batch's column: a NaN or a null is not judged."""
    if rule.op == "in":
        return ~np.isin(np.asarray(values, dtype=object), list(rule.allowed))
    values = np.asarray(values, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return values < rule.threshold if rule.op == "min" else values > rule.threshold


def document_scores(text: str, cfg: QualityConfig) -> dict[str, Any]:
    """Every enabled family's scores of one text, as plain Python values."""
    scores = batch_scores(pa.array([text], pa.large_string()), cfg, [text])
    return {k: (v[0].item() if isinstance(v[0], np.generic) else v[0]) for k, v in scores.items()}


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
    texts = batch[S.TEXT].combine_chunks()
    pylist = texts.to_pylist()
    n = len(pylist)
    scores = batch_scores(texts, cfg, pylist)
    rules = [r for r in quality_rules(cfg) if r.column in scores]
    fails = np.zeros((n, len(rules)), dtype=bool)
    for k, rule in enumerate(rules):
        fails[:, k] = rule_fails(rule, scores[rule.column])
    sources = np.asarray(batch[S.SOURCE].to_pylist(), dtype=object)
    for source, patterns in cfg.skip_rules.items():
        off = [k for k, r in enumerate(rules) if skipped(r.name, patterns)]
        if off:
            fails[np.ix_(sources == source, off)] = False
    failed = [[rules[k].name for k in np.flatnonzero(row)] for row in fails]
    reasons, details = [None] * n, [None] * n
    for i in np.flatnonzero(fails.any(axis=1)):
        first = rules[int(np.argmax(fails[i]))]
        reasons[i] = first.name
        value = scores[first.column][i]
        details[i] = first.explain(value.item() if isinstance(value, np.generic) else value)
    columns = {
        **{f.name: scores.get(f.name) for f in S.QUALITY_FIELDS},
        S.QUALITY_FAILED: failed,
        S.DROP_REASON: reasons,
        S.DROP_DETAIL: details,
        S.SNIPPET: [snippet(t) if r else None for t, r in zip(pylist, reasons, strict=True)],
    }
    out = batch.drop_columns([c for c in columns if c in batch.column_names])
    for f in [*S.QUALITY_FIELDS, *S.DROP_FIELDS]:
        values = columns[f.name]
        if values is None:
            values = pa.nulls(n, f.type)
        elif isinstance(values, np.ndarray) and values.dtype.kind == "f":
            values = pa.array(values, f.type, from_pandas=True)  # NaN: not scored, null
        else:
            values = pa.array(list(values) if isinstance(values, np.ndarray) else values, f.type)
        out = out.append_column(f, values)
    return out
