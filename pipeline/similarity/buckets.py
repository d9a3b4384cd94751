"""LSH buckets on Ray Data shuffles: explode per-document keys, find each bucket's rows.

A shuffle groups by a coarse key (many whole buckets per group), and each group is processed
with vectorised sorts instead of one Python call per bucket (most buckets hold one row).

    rows = explode(feats, BAND_KEYS, keep=[...], n_groups=8)   # one row per (doc, bucket)
    group, members, starts, sizes = bucket_runs(group, order=[DOC_ID])   # buckets of 2+ rows
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline import schema as S

BUCKET = "bucket"
BAND_KEYS = "band_keys"
N_SHINGLES = "n_shingles"
COARSE = "coarse"
# Bucket rows per group of a bucket shuffle.
ROWS_PER_GROUP = 20_000


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
