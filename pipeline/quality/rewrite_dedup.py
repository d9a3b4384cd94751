"""Near-duplicate rewrites, over the rewrites *and* their sources, with pipeline/similarity.

Two rewrites are duplicates when their texts are near-duplicates (word 5-gram Jaccard >=
threshold: a degenerate answer the model gives to many inputs), or when they have the same
style and their sources are near-duplicates (two rewrites of the same story from two feeds:
the rewrites differ in wording, so comparing rewrites alone would let the repetition back).
Two styles of one source document are not duplicates: that is what `styles_per_doc` asks.

Each rewrite gets two MinHash signatures (its text, its source text), banded into LSH keys
(source keys salted so the two kinds never share a bucket by accident); rewrites sharing a
bucket are verified on exact shingle sets. Of a verified pair, the one later in a stable hash
order of rewrite_id is dropped (a star, not connected components: in a chain A~B~C both B
and C go; for rewrites, losing a near-duplicate neighbourhood is cheap and it saves the
component rounds).

    feats = dedup_features(rows, RewriteDedupConfig())      # one row per kept rewrite
    edges = verify_bucket_group(group_of_bucket_rows, threshold=0.6)
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline import schema as S
from pipeline.config import ShingleConfig
from pipeline.config.fidelity import RewriteDedupConfig
from pipeline.plumbing.hashing import stable_rank
from pipeline.similarity.buckets import BAND_KEYS, N_SHINGLES, bucket_runs
from pipeline.similarity.lsh import band_keys, optimal_bands, run_pairs
from pipeline.similarity.minhash import minhash_signatures
from pipeline.similarity.sets import jaccard
from pipeline.similarity.shingles import shingle_hashes_batch

DUPLICATE_REWRITE = "duplicate_rewrite"
SOURCE_DOC_CAP = "source_doc_cap"
STYLE_CAP = "style_cap"
SOURCE_DOC = "source_doc"
RANK = "rank"
REWRITE_SHINGLES = "rewrite_shingles"
SOURCE_SHINGLES = "source_shingles"
_SOURCE_SALT = np.uint64(0xA5A5_5A5A_C3C3_3C3C)
# The dedup stage weights false negatives 0.95 (pipeline/config/dedup.py DedupConfig): same here.
_FP_WEIGHT, _FN_WEIGHT = 0.05, 0.95

FEATURES_SCHEMA = pa.schema(
    [
        pa.field(S.DOC_ID, pa.string()),  # the rewrite_id: the "document" of this dedup
        pa.field(SOURCE_DOC, pa.string()),
        pa.field(S.STYLE, pa.string()),
        pa.field(RANK, pa.int64()),
        pa.field(S.N_BYTES, pa.int64()),
        pa.field(N_SHINGLES, pa.int64()),
        pa.field(REWRITE_SHINGLES, pa.large_list(pa.uint32())),
        pa.field(SOURCE_SHINGLES, pa.large_list(pa.uint32())),
        pa.field(BAND_KEYS, pa.list_(pa.uint64())),
    ]
)
# A verified pair: `loser` is dropped as a near duplicate of `winner`.
PAIRS_SCHEMA = pa.schema(
    [
        pa.field("loser", pa.string()),
        pa.field("loser_doc", pa.string()),
        pa.field("winner", pa.string()),
        pa.field(S.KIND, pa.string()),  # "rewrite" or "source"
        pa.field(S.SIMILARITY, pa.float32()),
    ]
)


def resolve_bands(cfg: RewriteDedupConfig) -> tuple[int, int]:
    return optimal_bands(cfg.threshold, cfg.num_perm, _FP_WEIGHT, _FN_WEIGHT)


def _csr(texts: list[str], shingle: ShingleConfig):
    values, offsets = shingle_hashes_batch(texts, shingle)
    lists = pa.LargeListArray.from_arrays(pa.array(offsets), pa.array(values, pa.uint32()))
    return values, offsets, lists


def dedup_features(batch: pa.Table, cfg: RewriteDedupConfig) -> pa.Table:
    """Features of the rows still kept (no drop reason) of a batch of scored rewrite rows."""
    batch = batch.filter(pc.is_null(batch[S.DROP_REASON]))
    shingle = ShingleConfig(kind="word", n=cfg.shingle_n)
    bands, rows = resolve_bands(cfg)
    keys = []
    lists = {}
    for column, name, salt in (
        (S.TEXT, REWRITE_SHINGLES, np.uint64(0)),
        (S.SOURCE_TEXT, SOURCE_SHINGLES, _SOURCE_SALT),
    ):
        values, offsets, lists[name] = _csr(batch[column].to_pylist(), shingle)
        signatures = minhash_signatures(values, offsets, cfg.num_perm, cfg.seed)
        keys.append(band_keys(signatures, bands, rows) ^ salt)
    ids = batch[S.REWRITE_ID].to_pylist()
    return pa.table(
        {
            S.DOC_ID: batch[S.REWRITE_ID],
            SOURCE_DOC: batch[S.DOC_ID],
            S.STYLE: batch[S.STYLE],
            RANK: pa.array([stable_rank(cfg.seed, i) for i in ids], pa.int64()),
            S.N_BYTES: batch[S.N_BYTES],
            N_SHINGLES: pc.list_value_length(lists[REWRITE_SHINGLES]).cast(pa.int64()),
            REWRITE_SHINGLES: lists[REWRITE_SHINGLES],
            SOURCE_SHINGLES: lists[SOURCE_SHINGLES],
            BAND_KEYS: [np.concatenate(pair) for pair in zip(*keys, strict=True)],
        },
        schema=FEATURES_SCHEMA,
    )


def duplicate_kind(a: dict, b: dict, threshold: float) -> tuple[str, float] | None:
    """("rewrite" | "source", Jaccard) if rewrites a and b are duplicates, else None."""
    sim = jaccard(
        np.asarray(a[REWRITE_SHINGLES], np.uint32), np.asarray(b[REWRITE_SHINGLES], np.uint32)
    )
    if sim >= threshold:
        return "rewrite", sim
    if a[S.STYLE] == b[S.STYLE] and a[SOURCE_DOC] != b[SOURCE_DOC]:
        sim = jaccard(
            np.asarray(a[SOURCE_SHINGLES], np.uint32), np.asarray(b[SOURCE_SHINGLES], np.uint32)
        )
        if sim >= threshold:
            return "source", sim
    return None


def verify_bucket_group(group: pa.Table, threshold: float, max_bucket_pairs: int) -> pa.Table:
    """Bucket rows of one shuffle group (features exploded by band key) -> verified pairs."""
    group, rows, starts, sizes = bucket_runs(group, [S.DOC_ID])
    pairs = run_pairs(rows, starts, sizes, max_bucket_pairs)
    if len(pairs) == 0:
        return PAIRS_SCHEMA.empty_table()
    ids = group[S.DOC_ID].to_pylist()
    unique = sorted(
        {tuple(sorted((ids[i], ids[j]))): (i, j) for i, j in pairs if ids[i] != ids[j]}.items()
    )
    needed = sorted({k for _, ij in unique for k in ij})
    cols = [S.DOC_ID, SOURCE_DOC, S.STYLE, RANK, REWRITE_SHINGLES, SOURCE_SHINGLES]
    row_of = dict(zip(needed, group.select(cols).take(needed).to_pylist(), strict=True))
    out: dict[str, list] = {f.name: [] for f in PAIRS_SCHEMA}
    for _, (i, j) in unique:
        a, b = row_of[i], row_of[j]
        found = duplicate_kind(a, b, threshold)
        if found is None:
            continue
        winner, loser = sorted((a, b), key=lambda r: (r[RANK], r[S.DOC_ID]))
        out["loser"].append(loser[S.DOC_ID])
        out["loser_doc"].append(loser[SOURCE_DOC])
        out["winner"].append(winner[S.DOC_ID])
        out[S.KIND].append(found[0])
        out[S.SIMILARITY].append(found[1])
    return pa.table(out, schema=PAIRS_SCHEMA)


def mark_doc_group(rows: pa.Table, pairs: pa.Table, max_per_doc: int | None, seed: int):
    """The scored rewrites of one source document and the verified pairs whose loser is one of
    them: losers become duplicate_rewrite (detail: whom they duplicate, how), then the kept
    rest beyond `max_per_doc` (in stable_rank order) become source_doc_cap."""
    reason = rows[S.DROP_REASON].to_pylist()
    detail = rows[S.DROP_DETAIL].to_pylist()
    dup_of = rows[S.DUPLICATE_OF].to_pylist()
    ids = rows[S.REWRITE_ID].to_pylist()
    best: dict[str, dict] = {}
    for p in pairs.to_pylist():  # several pairs per loser: report the most similar
        if p["loser"] not in best or p[S.SIMILARITY] > best[p["loser"]][S.SIMILARITY]:
            best[p["loser"]] = p
    for i, rewrite_id in enumerate(ids):
        if reason[i] is None and rewrite_id in best:
            p = best[rewrite_id]
            reason[i], dup_of[i] = DUPLICATE_REWRITE, p["winner"]
            detail[i] = f"{p[S.KIND]} Jaccard {p[S.SIMILARITY]:.2f} with {p['winner']}"
    if max_per_doc is not None:
        kept = sorted(
            (i for i in range(len(ids)) if reason[i] is None),
            key=lambda i: (stable_rank(seed, ids[i]), ids[i]),
        )
        for i in kept[max_per_doc:]:
            reason[i] = SOURCE_DOC_CAP
            detail[i] = f"more than fidelity.max_per_source_doc={max_per_doc} rewrites"
    return _set(rows, {S.DROP_REASON: reason, S.DROP_DETAIL: detail, S.DUPLICATE_OF: dup_of})


def style_tops(batch: pa.Table, cap: int, seed: int) -> pa.Table:
    """Per style: kept rewrites in this block and their `cap` smallest ranks (the driver
    merges blocks: cap x styles x blocks numbers, never the rewrites)."""
    kept = batch.filter(pc.is_null(batch[S.DROP_REASON]))
    out: dict[str, list] = {S.STYLE: [], "count": [], "ranks": []}
    for style in pc.unique(kept[S.STYLE]).to_pylist():
        ids = kept.filter(pc.equal(kept[S.STYLE], style))[S.REWRITE_ID].to_pylist()
        out[S.STYLE].append(style)
        out["count"].append(len(ids))
        out["ranks"].append(sorted(stable_rank(seed, i) for i in ids)[:cap])
    return pa.table(
        out,
        schema=pa.schema(
            [(S.STYLE, pa.string()), ("count", pa.int64()), ("ranks", pa.list_(pa.int64()))]
        ),
    )


def style_cutoffs(tops: list[dict], cap: int) -> dict[str, int]:
    """The cap-th smallest rank per style that has more than `cap` kept rewrites."""
    counts: dict[str, int] = {}
    ranks: dict[str, list[int]] = {}
    for row in tops:
        counts[row[S.STYLE]] = counts.get(row[S.STYLE], 0) + row["count"]
        ranks.setdefault(row[S.STYLE], []).extend(row["ranks"])
    return {s: sorted(ranks[s])[cap - 1] for s, n in counts.items() if n > cap}


def apply_style_cap(batch: pa.Table, cutoffs: dict[str, int], cap: int, seed: int) -> pa.Table:
    reason = batch[S.DROP_REASON].to_pylist()
    detail = batch[S.DROP_DETAIL].to_pylist()
    for i, (rewrite_id, style) in enumerate(
        zip(batch[S.REWRITE_ID].to_pylist(), batch[S.STYLE].to_pylist(), strict=True)
    ):
        if (
            reason[i] is None
            and style in cutoffs
            and stable_rank(seed, rewrite_id) > cutoffs[style]
        ):
            reason[i] = STYLE_CAP
            detail[i] = f"more than fidelity.max_per_style={cap} {style} rewrites"
    return _set(batch, {S.DROP_REASON: reason, S.DROP_DETAIL: detail})


def _set(table: pa.Table, columns: dict[str, list]) -> pa.Table:
    for name, values in columns.items():
        i = table.schema.get_field_index(name)
        table = table.set_column(
            i, table.schema.field(i), pa.array(values, table.schema.field(i).type)
        )
    return table
