"""The dedup stage on Ray Data: exact, near (MinHash-LSH + components) and partial duplicates.

Steps, each a distributed Ray Data operation over files in <stage>/work/ (nothing is gathered
on the driver; a worker holds one batch, one bucket or one group):

1. exact     group by a digest of the normalised text; all but one survivor are dropped
2. features  per document: shingles, MinHash signature, band keys, window band keys
3. edges     group by band key; candidate pairs verified (exact Jaccard by default)
4. clusters  connected components of the edges; a survivor per component by `dedup.keep`
5. partial   window-LSH candidates, verified by containment (flag or remove)
6. decide    one row per document: kept (with its cluster) or dropped with its reason

Outputs: <stage>/data (kept documents), quarantine/dedup (dropped, with reason and detail),
<stage>/clusters (one row per member of every exact and near cluster).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import ray

from pipeline import schema as S
from pipeline.config import DedupConfig
from pipeline.dedup import clusters as C
from pipeline.dedup.components import COMPONENTS_SCHEMA, connected_components
from pipeline.dedup.containment import containment_candidates, window_band_keys
from pipeline.dedup.exact import text_digest
from pipeline.dedup.lsh import _run_pairs as run_pairs
from pipeline.dedup.lsh import band_keys, optimal_bands
from pipeline.dedup.minhash import minhash_signatures
from pipeline.dedup.shingles import shingle_hashes_batch
from pipeline.io.sink import AccountingSink
from pipeline.ray_ops import (
    cogroup,
    count_rows,
    read_parts,
    shuffle_partitions,
    sum_column,
    write_parts,
)
from pipeline.stage import RunContext, Stage
from pipeline.stats import StageStats, StepTimer

DIGEST = "digest"
BUCKET = "bucket"
BAND_KEYS = "band_keys"
WINDOW_KEYS = "window_keys"
N_SHINGLES = "n_shingles"
N_WINDOW_KEYS = "n_window_keys"
COARSE = "coarse"
# Bucket rows per group of the bucket shuffles: a group holds many whole buckets, processed
# with vectorised sorts instead of one Python call per bucket (most buckets hold one row).
ROWS_PER_GROUP = 20_000

FEATURES_SCHEMA = pa.schema(
    [
        pa.field(S.DOC_ID, pa.string()),
        pa.field(S.N_BYTES, pa.int64()),
        pa.field(N_SHINGLES, pa.int64()),
        pa.field(C.SHINGLES, pa.large_list(pa.uint32())),
        pa.field(C.SIGNATURE, pa.list_(pa.uint32())),
        pa.field(BAND_KEYS, pa.list_(pa.uint64())),
        pa.field(WINDOW_KEYS, pa.list_(pa.uint64())),
        pa.field(N_WINDOW_KEYS, pa.int64()),
    ]
)
MEMBER_SCHEMA = pa.schema(  # a component member with what the survivor rule needs
    [
        pa.field(S.DOC_ID, pa.string()),
        pa.field("component", pa.string()),
        pa.field(S.N_BYTES, pa.int64()),
        pa.field(C.SHINGLES, pa.large_list(pa.uint32())),
    ]
)
PAIR_SCHEMA = pa.schema([pa.field("part", pa.string()), pa.field("whole", pa.string())])
PART_SCHEMA = pa.schema(  # a candidate pair with the part's shingles attached
    [
        pa.field("part", pa.string()),
        pa.field("whole", pa.string()),
        pa.field(C.SHINGLES, pa.large_list(pa.uint32())),
    ]
)


def resolve_bands(cfg: DedupConfig) -> tuple[int, int]:
    if cfg.bands and cfg.rows:
        if cfg.bands * cfg.rows > cfg.num_perm:
            raise ValueError(f"dedup.bands * dedup.rows must be <= dedup.num_perm ({cfg.num_perm})")
        return cfg.bands, cfg.rows
    return optimal_bands(cfg.threshold, cfg.num_perm, cfg.fp_weight, cfg.fn_weight)


class DedupStage(Stage):
    name = "dedup"
    output_schema = S.DEDUP_SCHEMA

    def settings(self):
        return self.config.dedup

    def run(self, ctx: RunContext) -> StageStats:
        cfg = self.config.dedup
        source_dir = ctx.input_dir
        work = ctx.stage_dir(self.name) / "work"
        shutil.rmtree(work, ignore_errors=True)
        parts = shuffle_partitions(cfg.shuffle_partitions)
        bands, rows = resolve_bands(cfg)
        extra: dict = {"bands": bands, "rows": rows, "threshold": cfg.threshold}

        steps = StepTimer(self.name)
        docs = read_parts(source_dir, S.DOCS_SCHEMA)
        with steps("exact"):
            write_parts(_exact_step(docs, cfg, parts), work / "exact")
        exact = read_parts(work / "exact", C.EXACT_SCHEMA)

        near_clusters = ray.data.from_arrow(S.CLUSTERS_SCHEMA.empty_table())
        partial = ray.data.from_arrow(C.PARTIAL_SCHEMA.empty_table())
        if cfg.near or cfg.containment.enabled:
            with steps("features"):
                features = exact.map_batches(
                    _features,
                    batch_size=cfg.batch_rows,
                    batch_format="pyarrow",
                    fn_kwargs={"cfg": cfg, "bands": bands, "rows": rows},
                )
                write_parts(features, work / "features")
            features = read_parts(work / "features", FEATURES_SCHEMA)
        if cfg.near:
            with steps("near"):
                near_clusters, near_stats = _near_step(features, cfg, parts, work, bands)
            extra.update(near_stats)
        if cfg.containment.enabled:
            with steps("partial"):
                write_parts(
                    _partial_step(features, near_clusters, cfg, parts, work), work / "partial"
                )
            partial = read_parts(work / "partial", C.PARTIAL_SCHEMA)
            extra["partial_pairs"] = count_rows(work / "partial")

        clusters_dir = ctx.stage_dir(self.name) / "clusters"
        with steps("clusters table"):
            exact_clusters = exact.map_batches(C.exact_cluster_rows, batch_format="pyarrow")
            write_parts(exact_clusters.union(near_clusters), clusters_dir)

        sink = AccountingSink(
            ctx.data_dir(self.name),
            ctx.quarantine_dir(self.name),
            S.DEDUP_SCHEMA,
            size_column=S.N_BYTES,
        )
        with steps("decide"):
            decided = cogroup(
                {
                    "doc": (exact, S.DOC_ID, C.EXACT_SCHEMA),
                    "near": (near_clusters, S.DOC_ID, S.CLUSTERS_SCHEMA),
                    "partial": (partial, S.DOC_ID, C.PARTIAL_SCHEMA),
                },
                _decide,
                parts,
                fn_kwargs={"action": cfg.containment.action},
            )
            decided.write_datasink(sink)
        extra.update(_cluster_stats(clusters_dir, sink))
        extra["step_seconds"] = steps.seconds
        return StageStats(
            stage=self.name,
            rows_in=count_rows(source_dir),
            rows_out=sink.result.rows_out,
            dropped=sink.result.dropped,
            bytes_in=sum_column(source_dir, S.N_BYTES),
            bytes_out=sink.result.bytes_out,
            extra=extra,
        )


# --- step 1: exact ------------------------------------------------------------------------


def _exact_step(docs: ray.data.Dataset, cfg: DedupConfig, parts: int) -> ray.data.Dataset:
    with_digest = docs.map_batches(_add_digest, batch_format="pyarrow")
    if not cfg.exact:
        return with_digest.map_batches(_as_unique, batch_format="pyarrow")
    return with_digest.groupby(DIGEST, num_partitions=parts).map_groups(
        _mark_exact, batch_format="pyarrow", fn_kwargs={"rule": cfg.keep}
    )


def _not_dropped(batch: pa.Table) -> pa.Table:
    return batch.filter(pc.is_null(batch[S.DROP_REASON]))


def _add_digest(batch: pa.Table) -> pa.Table:
    digests = [text_digest(t).hex() for t in batch[S.TEXT].to_pylist()]
    return batch.append_column(DIGEST, pa.array(digests, pa.string()))


def _mark_exact(group: pa.Table, rule: str) -> pa.Table:
    return C.mark_exact_group(group.drop_columns([DIGEST]), rule)


def _as_unique(batch: pa.Table) -> pa.Table:
    n = batch.num_rows
    columns = {f.name: batch[f.name] for f in S.DOCS_SCHEMA}
    columns[C.DUPLICATE_OF] = pa.nulls(n, pa.string())
    columns[C.GROUP_SIZE] = pa.array([1] * n, pa.int32())
    for name in S.DROP_COLUMNS:
        columns[name] = pa.nulls(n, pa.string())
    return pa.table(columns, schema=C.EXACT_SCHEMA)


# --- step 2: features ---------------------------------------------------------------------


def _features(batch: pa.Table, cfg: DedupConfig, bands: int, rows: int) -> pa.Table:
    batch = _not_dropped(batch)  # exact duplicates need no features
    texts = batch[S.TEXT].to_pylist()
    values, offsets = shingle_hashes_batch(texts, cfg.shingle)
    signatures = minhash_signatures(values, offsets, cfg.num_perm, cfg.seed)
    keys = band_keys(signatures, bands, rows)
    if cfg.containment.enabled:
        windows = window_band_keys(texts, cfg.shingle, cfg.containment, cfg.seed)
    else:
        windows = [np.empty(0, np.uint64)] * len(texts)
    return pa.table(
        {
            S.DOC_ID: batch[S.DOC_ID],
            S.N_BYTES: batch[S.N_BYTES],
            N_SHINGLES: np.diff(offsets),
            C.SHINGLES: pa.LargeListArray.from_arrays(pa.array(offsets), pa.array(values)),
            C.SIGNATURE: list(signatures),
            BAND_KEYS: list(keys),
            WINDOW_KEYS: windows,
            N_WINDOW_KEYS: [len(w) for w in windows],
        },
        schema=FEATURES_SCHEMA,
    )


# --- steps 3-4: near duplicates -----------------------------------------------------------


def _near_step(features, cfg: DedupConfig, parts: int, work: Path, bands: int):
    n_groups = _coarse_groups(count_rows(work / "features") * bands)
    buckets = features.map_batches(
        _explode,
        batch_format="pyarrow",
        fn_kwargs={"keys": BAND_KEYS, "keep": [C.SHINGLES, C.SIGNATURE], "n_groups": n_groups},
    )
    edges = buckets.groupby(COARSE, num_partitions=parts).map_groups(
        _verify_buckets, batch_format="pyarrow", fn_kwargs={"cfg": cfg}
    )
    write_parts(edges, work / "edges")
    edges = read_parts(work / "edges", C.EDGES_SCHEMA)
    components = connected_components(edges, work / "components", cfg.max_cc_iterations, parts)
    doc_columns = [S.DOC_ID, S.N_BYTES, C.SHINGLES]
    members = cogroup(
        {
            "node": (components.dataset, "node", COMPONENTS_SCHEMA),
            "doc": (
                features.select_columns(doc_columns),
                S.DOC_ID,
                pa.schema([FEATURES_SCHEMA.field(n) for n in doc_columns]),
            ),
        },
        _member,
        parts,
    )
    clusters = members.groupby("component", num_partitions=parts).map_groups(
        _near_cluster, batch_format="pyarrow", fn_kwargs={"rule": cfg.keep}
    )
    write_parts(clusters, work / "clusters_near")
    stats = {
        "verified_edges": count_rows(work / "edges"),
        "components_rounds": components.rounds,
    }
    return read_parts(work / "clusters_near", S.CLUSTERS_SCHEMA), stats


def _coarse_groups(total_rows: int) -> int:
    return max(1, total_rows // ROWS_PER_GROUP)


def _explode(batch: pa.Table, keys: str, keep: list[str], n_groups: int) -> pa.Table:
    """One row per (document, bucket key), with the coarse group key that the shuffle uses."""
    lists = batch[keys].combine_chunks()
    lengths = pc.list_value_length(lists).to_numpy(zero_copy_only=False)
    index = np.repeat(np.arange(batch.num_rows), lengths)
    bucket = pc.list_flatten(lists)
    coarse = (bucket.to_numpy(zero_copy_only=False) % np.uint64(n_groups)).astype(np.int64)
    columns = {BUCKET: bucket, COARSE: coarse, S.DOC_ID: batch[S.DOC_ID].take(index)}
    for name in [S.N_BYTES, N_SHINGLES, *keep]:
        columns[name] = batch[name].take(index)
    return pa.table(columns)


def _bucket_runs(group: pa.Table, order: list[str]):
    """Sort a coarse group by bucket (then `order`); return it with the row indices of its
    buckets of 2+ rows, packed run after run, and each run's start (into that array) and size."""
    group = group.sort_by([(BUCKET, "ascending")] + [(c, "ascending") for c in order])
    bucket = group[BUCKET].to_numpy()
    new_run = np.ones(len(bucket), dtype=bool)
    new_run[1:] = bucket[1:] != bucket[:-1]
    starts = np.flatnonzero(new_run)
    sizes = np.diff(np.append(starts, len(bucket)))
    shared = sizes >= 2
    starts, sizes = starts[shared], sizes[shared]
    packed_starts = np.cumsum(sizes) - sizes
    rows = np.arange(sizes.sum()) + np.repeat(starts - packed_starts, sizes)
    return group, rows, packed_starts, sizes


def _verify_buckets(group: pa.Table, cfg: DedupConfig) -> pa.Table:
    group, rows, starts, sizes = _bucket_runs(group, [S.DOC_ID])
    pairs = run_pairs(rows, starts, sizes, cfg.max_bucket_pairs)
    if len(pairs) == 0:
        return C.EDGES_SCHEMA.empty_table()
    # Only rows in some pair are converted to Python; a document's rows are deduplicated so
    # a pair found in several bands is verified once.
    ids = group[S.DOC_ID].to_numpy(zero_copy_only=False)
    rows, inverse = np.unique(ids[pairs.ravel()], return_inverse=True)
    first_row = {doc: i for i, doc in reversed(list(enumerate(ids)))}
    subset = group.take([first_row[doc] for doc in rows])
    unique_pairs = np.unique(np.sort(inverse.reshape(-1, 2), axis=1), axis=0)
    unique_pairs = unique_pairs[unique_pairs[:, 0] != unique_pairs[:, 1]]
    return C.verify_pairs(subset, unique_pairs, cfg.threshold, cfg.verify)


def _member(parts: dict[str, pa.Table]) -> pa.Table:
    node, doc = parts["node"], parts["doc"]
    if node.num_rows == 0 or doc.num_rows == 0:
        return MEMBER_SCHEMA.empty_table()
    return pa.table(
        {
            S.DOC_ID: doc[S.DOC_ID].slice(0, 1),
            "component": node["component"].slice(0, 1),
            S.N_BYTES: doc[S.N_BYTES].slice(0, 1),
            C.SHINGLES: doc[C.SHINGLES].slice(0, 1),
        },
        schema=MEMBER_SCHEMA,
    )


def _near_cluster(group: pa.Table, rule: str) -> pa.Table:
    return C.near_cluster_rows(group, rule)


# --- step 5: partial duplicates -----------------------------------------------------------


def _partial_step(features, near_clusters, cfg: DedupConfig, parts: int, work: Path):
    n_groups = _coarse_groups(sum_column(work / "features", N_WINDOW_KEYS))
    windows = features.map_batches(
        _explode,
        batch_format="pyarrow",
        fn_kwargs={"keys": WINDOW_KEYS, "keep": [], "n_groups": n_groups},
    )
    pairs = windows.groupby(COARSE, num_partitions=parts).map_groups(
        _window_pairs, batch_format="pyarrow", fn_kwargs={"cap": cfg.max_bucket_pairs}
    )
    shingles = features.select_columns([S.DOC_ID, C.SHINGLES])
    shingles_schema = pa.schema(
        [FEATURES_SCHEMA.field(S.DOC_ID), FEATURES_SCHEMA.field(C.SHINGLES)]
    )
    with_part = cogroup(
        {"pair": (pairs, "part", PAIR_SCHEMA), "doc": (shingles, S.DOC_ID, shingles_schema)},
        _attach_part,
        parts,
    )
    measured = cogroup(
        {"pair": (with_part, "whole", PART_SCHEMA), "doc": (shingles, S.DOC_ID, shingles_schema)},
        _measure_containment,
        parts,
        fn_kwargs={"threshold": cfg.containment.threshold},
    )
    return cogroup(
        {
            "partial": (measured, S.PARTIAL_DUP_OF, C.PARTIAL_SCHEMA),
            "near": (near_clusters, S.DOC_ID, S.CLUSTERS_SCHEMA),
        },
        _redirect_to_survivor,
        parts,
    )


def _window_pairs(group: pa.Table, cap: int) -> pa.Table:
    group, rows, starts, sizes = _bucket_runs(group, [N_SHINGLES, S.DOC_ID])
    shared = group.take(rows)
    ids = shared[S.DOC_ID].to_pylist()
    n_shingles = shared[N_SHINGLES].to_pylist()
    pairs = set()
    for start, size in zip(starts, sizes, strict=True):
        run = slice(start, start + size)
        pairs.update(containment_candidates(ids[run], n_shingles[run], cap))
    ordered = sorted(pairs)
    return pa.table(
        {"part": [p for p, _ in ordered], "whole": [w for _, w in ordered]}, schema=PAIR_SCHEMA
    )


def _attach_part(parts: dict[str, pa.Table]) -> pa.Table:
    pairs, doc = parts["pair"], parts["doc"]
    if pairs.num_rows == 0 or doc.num_rows == 0:
        return PART_SCHEMA.empty_table()
    wholes = sorted(set(pairs["whole"].to_pylist()))
    part = pairs["part"][0].as_py()
    shingles = doc[C.SHINGLES][0].as_py()
    return pa.table(
        {"part": [part] * len(wholes), "whole": wholes, C.SHINGLES: [shingles] * len(wholes)},
        schema=PART_SCHEMA,
    )


def _measure_containment(parts: dict[str, pa.Table], threshold: float) -> pa.Table:
    pairs, doc = parts["pair"], parts["doc"]
    out = {S.DOC_ID: [], S.PARTIAL_DUP_OF: [], S.CONTAINMENT: []}
    if pairs.num_rows and doc.num_rows:
        whole = np.asarray(doc[C.SHINGLES][0].as_py(), dtype=np.uint32)
        for row in pairs.to_pylist():
            share = C.containment(np.asarray(row[C.SHINGLES], dtype=np.uint32), whole)
            if share >= threshold:
                out[S.DOC_ID].append(row["part"])
                out[S.PARTIAL_DUP_OF].append(row["whole"])
                out[S.CONTAINMENT].append(share)
    return pa.table(out, schema=C.PARTIAL_SCHEMA)


def _redirect_to_survivor(parts: dict[str, pa.Table]) -> pa.Table:
    """A container that is itself a near-duplicate is replaced by its cluster's survivor."""
    partial, near = parts["partial"], parts["near"]
    if partial.num_rows == 0 or near.num_rows == 0:
        return partial
    survivor = near[S.SURVIVOR][0].as_py()
    keep = pc.not_equal(partial[S.DOC_ID], survivor)
    return partial.filter(keep).set_column(
        1, S.PARTIAL_DUP_OF, pa.array([survivor] * pc.sum(keep).as_py(), pa.string())
    )


# --- step 6: decide -----------------------------------------------------------------------


def _decide(parts: dict[str, pa.Table], action: str) -> pa.Table:
    if parts["doc"].num_rows == 0:  # a cluster or partial row whose document is not here
        return S.with_drop_columns(S.DEDUP_SCHEMA).empty_table()
    return C.decide(parts["doc"], parts["near"], parts["partial"], action)


def _cluster_stats(clusters_dir: Path, sink: AccountingSink) -> dict:
    clusters = read_parts(clusters_dir, S.CLUSTERS_SCHEMA)
    heads = clusters.select_columns([S.KIND, S.CLUSTER_SIZE, S.IS_SURVIVOR])
    histogram: dict[str, dict[str, int]] = {}
    for row in heads.iter_rows():
        if not row[S.IS_SURVIVOR]:
            continue
        sizes = histogram.setdefault(row[S.KIND], {})
        bucket = _size_bucket(row[S.CLUSTER_SIZE])
        sizes[bucket] = sizes.get(bucket, 0) + 1
    return {
        "exact_duplicates": sink.result.dropped.get(C.EXACT_DUPLICATE, 0),
        "near_duplicates": sink.result.dropped.get(C.NEAR_DUPLICATE, 0),
        "partial_duplicates": sink.result.dropped.get(C.PARTIAL_DUPLICATE, 0),
        "cluster_size_histogram": {k: dict(sorted(v.items())) for k, v in histogram.items()},
    }


def _size_bucket(size: int) -> str:
    """Cluster sizes in powers of two: "2", "3-4", "5-8", "9-16", ..."""
    high = 1 << (size - 1).bit_length()
    low = high // 2 + 1
    return str(high) if low == high else f"{low}-{high}"
