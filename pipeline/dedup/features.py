"""Per-document dedup features and the bucket helpers both LSH passes share (no Ray here).

feats = compute_features(batch, cfg, bands, rows)   # shingles, signature, band/window keys
rows = explode(feats, BAND_KEYS, keep=[...], n_groups=8)   # one row per (doc, bucket)
group, members, starts, sizes = bucket_runs(group, order=[DOC_ID])   # buckets of 2+ rows
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline import schema as S
from pipeline.config import DedupConfig
from pipeline.dedup import clusters as C
from pipeline.dedup.containment import window_band_keys
from pipeline.dedup.lsh import band_keys, optimal_bands
from pipeline.dedup.minhash import minhash_signatures
from pipeline.dedup.shingles import shingle_hashes_batch

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


def resolve_bands(cfg: DedupConfig) -> tuple[int, int]:
    if cfg.bands and cfg.rows:
        if cfg.bands * cfg.rows > cfg.num_perm:
            raise ValueError(f"dedup.bands * dedup.rows must be <= dedup.num_perm ({cfg.num_perm})")
        return cfg.bands, cfg.rows
    return optimal_bands(cfg.threshold, cfg.num_perm, cfg.fp_weight, cfg.fn_weight)


def not_dropped(batch: pa.Table) -> pa.Table:
    return batch.filter(pc.is_null(batch[S.DROP_REASON]))


def compute_features(batch: pa.Table, cfg: DedupConfig, bands: int, rows: int) -> pa.Table:
    batch = not_dropped(batch)  # exact duplicates need no features
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


def coarse_groups(total_rows: int) -> int:
    return max(1, total_rows // ROWS_PER_GROUP)


def explode(batch: pa.Table, keys: str, keep: list[str], n_groups: int) -> pa.Table:
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


def bucket_runs(group: pa.Table, order: list[str]):
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
