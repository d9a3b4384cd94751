"""Rewrite dedup (over rewrites and their sources) and the caps, without Ray."""

from __future__ import annotations

import pyarrow as pa
from quality_fixtures import faithful_rewrites, recorded_pairs, sample_text

from pipeline import schema as S
from pipeline.config.fidelity import RewriteDedupConfig
from pipeline.plumbing.hashing import stable_rank
from pipeline.quality.rewrite_dedup import (
    DUPLICATE_REWRITE,
    PAIRS_SCHEMA,
    RANK,
    REWRITE_SHINGLES,
    SOURCE_DOC,
    SOURCE_DOC_CAP,
    SOURCE_SHINGLES,
    apply_style_cap,
    dedup_features,
    mark_doc_group,
    style_cutoffs,
    style_tops,
    verify_bucket_group,
)
from pipeline.similarity.buckets import BAND_KEYS, explode
from pipeline.text_fidelity.scores import SCORED_SCHEMA

CFG = RewriteDedupConfig()


def scored_row(rewrite_id: str, style: str, text: str, source: str, reason=None) -> dict:
    return {
        S.REWRITE_ID: rewrite_id, S.DOC_ID: rewrite_id.split("#")[0], S.SOURCE: "news",
        S.STYLE: style, S.TEXT: text, S.SOURCE_TEXT: source, S.N_BYTES: len(text),
        S.DROP_REASON: reason,
    }  # fmt: skip


def edited(text: str, every: int = 50) -> str:
    """The text with every `every`-th word replaced: a near duplicate (2% edits)."""
    return " ".join("indeed" if i % every == 3 else w for i, w in enumerate(text.split()))


def find_pairs(rows: list[dict]) -> list[dict]:
    table = pa.Table.from_pylist(rows, schema=SCORED_SCHEMA)
    feats = dedup_features(table, CFG)
    keep = [SOURCE_DOC, S.STYLE, RANK, REWRITE_SHINGLES, SOURCE_SHINGLES]
    buckets = explode(feats, BAND_KEYS, keep=keep, n_groups=1)
    pairs = verify_bucket_group(buckets, CFG.threshold, CFG.max_bucket_pairs).to_pylist()
    return sorted(pairs, key=lambda p: p["loser"])


def test_duplicates_by_rewrite_and_by_source_but_not_across_styles():
    story = sample_text("news/lee_background-0051")
    fire = sample_text("news/lee_background-0109")
    summary = faithful_rewrites()[0]["text"]  # a rewrite of story
    meta = recorded_pairs()[11]["text"]  # "The text should be reworded ..." (generic)
    rows = [
        scored_row("news/a#summary", "summary", summary, story),
        # the same story from another feed, near-duplicate source, rewritten differently:
        scored_row("news/b#summary", "summary", fire[:600], edited(story)),
        # same near-duplicate source in another style: what styles_per_doc asks for
        scored_row("news/c#qa", "qa", fire[600:1200], edited(story, 40)),
        # one generic answer given to two unrelated documents
        scored_row("news/d#student", "student", meta, fire),
        scored_row("news/e#student", "student", meta + " ", sample_text("wiki/600")),
        # a dropped row takes no part
        scored_row("news/f#summary", "summary", summary, story, reason="unfaithful"),
    ]
    pairs = find_pairs(rows)
    kinds = {frozenset((p["loser"], p["winner"])): p[S.KIND] for p in pairs}
    assert kinds == {
        frozenset(("news/a#summary", "news/b#summary")): "source",
        frozenset(("news/d#student", "news/e#student")): "rewrite",
    }
    for p in pairs:  # the loser is the later one in the stable hash order
        assert stable_rank(CFG.seed, p["loser"]) > stable_rank(CFG.seed, p["winner"])
        assert p["loser_doc"] == p["loser"].split("#")[0]


def test_mark_doc_group_marks_duplicates_then_caps_the_rest():
    rows = pa.Table.from_pylist(
        [scored_row(f"news/a#{s}", s, f"text {s}", "src") for s in ("qa", "summary", "expert")]
        + [scored_row("news/a#student", "student", "t", "src", reason="boilerplate")],
        schema=SCORED_SCHEMA,
    )
    pairs = pa.Table.from_pylist(
        [{"loser": "news/a#qa", "loser_doc": "news/a", "winner": "news/z#qa",
          S.KIND: "source", S.SIMILARITY: 0.8}],
        schema=PAIRS_SCHEMA,
    )  # fmt: skip
    out = mark_doc_group(rows, pairs, max_per_doc=1, seed=0).to_pylist()
    by_id = {r[S.REWRITE_ID]: r for r in out}
    assert by_id["news/a#qa"][S.DROP_REASON] == DUPLICATE_REWRITE
    assert by_id["news/a#qa"][S.DUPLICATE_OF] == "news/z#qa"
    assert "source Jaccard 0.80" in by_id["news/a#qa"][S.DROP_DETAIL]
    assert by_id["news/a#student"][S.DROP_REASON] == "boilerplate"  # earlier reason stays
    capped = [r for r in out if r[S.DROP_REASON] == SOURCE_DOC_CAP]
    kept = [r for r in out if r[S.DROP_REASON] is None]
    assert len(kept) == 1 and len(capped) == 1
    first = min(("news/a#summary", "news/a#expert"), key=lambda i: stable_rank(0, i))
    assert kept[0][S.REWRITE_ID] == first


def test_style_cap_keeps_the_same_rewrites_however_the_rows_are_split():
    rows = [scored_row(f"news/{i}#qa", "qa", "t", "s") for i in range(10)]
    rows += [scored_row(f"news/{i}#summary", "summary", "t", "s") for i in range(3)]
    table = pa.Table.from_pylist(rows, schema=SCORED_SCHEMA)

    def capped(blocks: list[pa.Table]) -> set[str]:
        tops = [r for b in blocks for r in style_tops(b, 4, 0).to_pylist()]
        cutoffs = style_cutoffs(tops, 4)
        assert set(cutoffs) == {"qa"}  # summary has 3 <= 4
        out = [apply_style_cap(b, cutoffs, 4, 0) for b in blocks]
        kept = [r for b in out for r in b.to_pylist() if r[S.DROP_REASON] is None]
        assert sum(r[S.STYLE] == "qa" for r in kept) == 4
        return {r[S.REWRITE_ID] for r in kept}

    assert capped([table]) == capped([table.slice(0, 5), table.slice(5)])
