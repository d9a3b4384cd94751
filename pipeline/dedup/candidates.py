"""Pure reduce steps over one key partition: exact groups, near and partial candidate pairs.

Each takes the rows of one partition (every key's rows are in one partition) and returns int64
arrays; nothing here knows about files or Ray.

    groups = exact_groups(digest_rows, keep="longest")       # idx, survivor, group_size
    pairs = near_candidates(band_rows, excluded, cap=64)     # (k, 2) a < b, unique
    need = anchors_needed(n_anchors, threshold=0.5, min_shared=2)      # per (part) document

Partial candidates by prefix filtering (Bayardo et al., "Scaling up all pairs similarity
search", 2007): order every document's anchors rarest first (by how many documents hold them,
then by key); a pair sharing `need` of the part's A anchors shares one of its first
A - need + 1, its prefix. So only the prefix anchors pair a part with its wholes, and an
anchor that many documents hold (a common phrase, boilerplate) is in few prefixes:

    shared = shared_anchors(anchor_rows, excluded)        # per key partition: df >= 2 rows
    prefix = in_prefix(idx, key, df, n_anchors, need)     # per document (all its rows)
    pairs = prefix_candidates(shared, prefix, cap=64)     # per key partition again
    pairs, counts = partial_candidates(anchor_rows, excluded, n_anchors, 0.5, 2, cap=64)  # all
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy.stats import binom

from pipeline import schema as S
from pipeline.dedup.keys import ANCHORS_SCHEMA, DIGEST_HI, DIGEST_LO, KEY, N_SHINGLES
from pipeline.dedup.workfiles import IDX
from pipeline.similarity.lsh import run_pairs
from pipeline.similarity.sets import intersection_sizes

KEEP_RULES = ("longest", "smallest_id")
# The chance that the anchor count turns away a pair right at the containment threshold.
ANCHOR_MISS = 1e-3
SURVIVOR = "survivor"
GROUP_SIZE = "group_size"
DF = "df"  # how many documents hold an anchor
SHARED_ANCHORS_SCHEMA = pa.schema([*ANCHORS_SCHEMA, pa.field(DF, pa.int32())])
PREFIX_SCHEMA = pa.schema([pa.field(KEY, pa.uint32()), pa.field(IDX, pa.int64())])


def survivor_order(rule: str) -> list[tuple[str, str]]:
    """Sort keys that put a group's survivor first: most bytes, then smallest id; or id."""
    if rule == "longest":
        return [(S.N_BYTES, "descending"), (S.DOC_ID, "ascending")]
    if rule == "smallest_id":
        return [(S.DOC_ID, "ascending")]
    raise ValueError(f"unknown keep rule {rule!r}; known: {KEEP_RULES}")


def runs(sorted_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(starts, sizes) of the runs of equal values in a sorted array."""
    if len(sorted_keys) == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    new_run = np.ones(len(sorted_keys), dtype=bool)
    new_run[1:] = sorted_keys[1:] != sorted_keys[:-1]
    starts = np.flatnonzero(new_run)
    return starts, np.diff(np.append(starts, len(sorted_keys)))


def exact_groups(rows: pa.Table, rule: str) -> pa.Table:
    """Members of every digest shared by 2+ documents: idx, doc_id, n_bytes, the survivor's
    idx and doc_id, and the group size; the survivor's own row included."""
    order = [(DIGEST_HI, "ascending"), (DIGEST_LO, "ascending"), *survivor_order(rule)]
    rows = rows.sort_by(order)
    hi, lo = rows[DIGEST_HI].to_numpy(), rows[DIGEST_LO].to_numpy()
    new_run = np.ones(len(hi), dtype=bool)
    new_run[1:] = (hi[1:] != hi[:-1]) | (lo[1:] != lo[:-1])
    starts = np.flatnonzero(new_run)
    sizes = np.diff(np.append(starts, len(hi)))
    size = np.repeat(sizes, sizes)
    shared = size >= 2
    first = np.repeat(starts, sizes)[shared]
    return pa.table(
        {
            IDX: rows[IDX].filter(shared),
            S.DOC_ID: rows[S.DOC_ID].filter(shared),
            S.N_BYTES: rows[S.N_BYTES].filter(shared),
            SURVIVOR: rows[IDX].take(first),
            f"{SURVIVOR}_id": rows[S.DOC_ID].take(first),
            GROUP_SIZE: size[shared].astype(np.int32),
        }
    )


def _without(rows: pa.Table, excluded: np.ndarray) -> pa.Table:
    if len(excluded) == 0:
        return rows
    return rows.filter(pc.invert(pc.is_in(rows[IDX], pa.array(excluded, pa.int64()))))


def _shared_buckets(key: np.ndarray) -> np.ndarray:
    """Rows whose key at least one other row has, grouped by key (no order within a group).
    Almost every bucket holds one document, so one sort by key alone and a filter leave little
    for the finer orders below."""
    if key.dtype == np.uint32:  # anchors: key and row packed in one uint64, a plain sort
        packed = (key.astype(np.uint64) << np.uint64(32)) | np.arange(len(key), dtype=np.uint64)
        packed.sort()
        order = (packed & np.uint64(0xFFFFFFFF)).astype(np.int64)
        sorted_key = packed >> np.uint64(32)
    else:
        order = np.argsort(key)
        sorted_key = key[order]
    equal_next = sorted_key[1:] == sorted_key[:-1]
    shared = np.zeros(len(sorted_key), dtype=bool)
    shared[1:] |= equal_next
    shared[:-1] |= equal_next
    return order[shared]


def near_candidates(rows: pa.Table, excluded: np.ndarray, cap: int) -> np.ndarray:
    """Unique (a, b), a < b, of documents sharing a band key; `excluded` documents (exact
    duplicates) take no part. A bucket of more than `cap` documents pairs its smallest index
    with every other one only (a star bounds the work of a boilerplate bucket)."""
    rows = _without(rows, excluded)
    key, idx = rows[KEY].to_numpy(), rows[IDX].to_numpy()
    shared = _shared_buckets(key)
    order = shared[np.lexsort((idx[shared], key[shared]))]
    if len(order) == 0:
        return np.empty((0, 2), np.int64)
    starts, sizes = runs(key[order])
    return unique_pairs(run_pairs(idx[order], starts, sizes, cap))[0]


def anchors_needed(n_anchors: np.ndarray, threshold: float, min_shared: int) -> np.ndarray:
    """How many anchors a (part, whole) pair must share, by the part's anchor count A.

    Whether a shingle is an anchor depends on its hash alone, not on which documents hold it,
    so of a part whose share c of shingles is in the whole, each anchor is in the whole with
    chance c: the shared count is hypergeometric, narrower than Bin(A, c). A pair at the
    containment `threshold` falls below the returned count with probability <= ANCHOR_MISS
    (at threshold 0.5: 12 of 45 anchors, 26 of 80; a pair above it, less often still), so a
    pair below it is no partial duplicate but for that tail. Short parts need `min_shared`
    (or all they have): one shared anchor is often chance (a common phrase), two rarely are.
    """
    n = np.asarray(n_anchors, dtype=np.int64)
    distinct, inverse = np.unique(n, return_inverse=True)
    tail = np.nan_to_num(binom.ppf(ANCHOR_MISS, distinct, threshold)).astype(np.int64)
    need = np.maximum(tail, np.minimum(min_shared, distinct))
    return np.maximum(1, need)[inverse.ravel()].reshape(n.shape)


def shared_anchors(rows: pa.Table, excluded: np.ndarray) -> pa.Table:
    """The rows (SHARED_ANCHORS_SCHEMA) of the anchors that 2+ documents hold, with that
    count; `excluded` documents take no part. The rest can pair nothing."""
    rows = _without(rows, excluded)
    key = rows[KEY].to_numpy()
    order = _shared_buckets(key)  # grouped by key
    _, sizes = runs(key[order])
    rows = rows.take(pa.array(order))
    return rows.append_column(DF, pa.array(np.repeat(sizes, sizes).astype(np.int32)))


def in_prefix(
    idx: np.ndarray, key: np.ndarray, df: np.ndarray, n_anchors: np.ndarray, need: np.ndarray
) -> np.ndarray:
    """Which rows are in their document's prefix. Rows: every shared anchor (df >= 2) of some
    documents, with the document's anchor count A and shared anchors needed (per row).

    A document's anchors in the order rarest first (df, then key) begin with the A - m that
    no other document holds (m: its shared ones); its prefix is the first A - need + 1."""
    order = np.lexsort((key, df, idx))
    starts, sizes = runs(idx[order])
    rank = np.arange(len(order)) - np.repeat(starts, sizes)
    alone = n_anchors[order] - np.repeat(sizes, sizes)
    mask = np.empty(len(order), dtype=bool)
    mask[order] = alone + rank < n_anchors[order] - need[order] + 1
    return mask


def prefix_candidates(shared: pa.Table, prefix: np.ndarray, cap: int) -> np.ndarray:
    """Unique (part, whole) pairs of one key partition's shared anchor rows: a member whose
    prefix holds the key (`prefix`, per row) pairs, as the part, with every larger member of
    the bucket (shingles, then index); in a bucket of more than `cap`, with the largest only."""
    key, idx = shared[KEY].to_numpy(), shared[IDX].to_numpy()
    size = shared[N_SHINGLES].to_numpy()
    order = np.lexsort((-idx, -size, key))  # largest first
    if len(order) == 0:
        return np.empty((0, 2), np.int64)
    starts, sizes = runs(key[order])
    first = np.repeat(starts, sizes)
    rank = np.arange(len(order)) - first
    wholes = np.where(np.repeat(sizes, sizes) > cap, np.minimum(rank, 1), rank)
    wholes = np.where(prefix[order], wholes, 0)
    at = np.repeat(np.arange(len(order)), wholes)
    within = np.arange(len(at)) - np.repeat(np.cumsum(wholes) - wholes, wholes)
    ranked = idx[order]
    return unique_pairs(np.stack([ranked[at], ranked[first[at] + within]], axis=1))[0]


def partial_candidates(
    rows: pa.Table,
    excluded: np.ndarray,
    n_anchors: np.ndarray,
    threshold: float,
    min_shared: int,
    cap: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The stage's partial candidates of anchor `rows` in one call (the stage runs each step
    on its partition): (part, whole) pairs sharing enough anchors, and how many they share.
    `n_anchors[idx]` is document idx's anchor count."""
    shared = shared_anchors(rows, excluded)
    idx, key = shared[IDX].to_numpy(), shared[KEY].to_numpy()
    a = np.asarray(n_anchors, dtype=np.int64)[idx]
    need = anchors_needed(a, threshold, min_shared)
    pairs = prefix_candidates(shared, in_prefix(idx, key, shared[DF].to_numpy(), a, need), cap)
    docs, values, offsets = anchor_sets(idx, key)
    counts = intersection_sizes(values, offsets, np.searchsorted(docs, pairs))
    n = np.asarray(n_anchors, dtype=np.int64)
    keep = counts >= anchors_needed(n[pairs[:, 0]], threshold, min_shared)
    return pairs[keep], counts[keep]


def anchor_sets(idx: np.ndarray, key: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows (idx, key) as CSR sets: the distinct documents (ascending), their sorted keys,
    and offsets."""
    order = np.lexsort((key, idx))
    starts, sizes = runs(idx[order])
    offsets = np.zeros(len(starts) + 1, np.int64)
    np.cumsum(sizes, out=offsets[1:])
    return idx[order][starts], key[order], offsets


def pair_codes(pairs: np.ndarray) -> np.ndarray:
    """Each (a, b) pair of indices < 2^32 as one uint64, a in the high half."""
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    return (pairs[:, 0].astype(np.uint64) << np.uint64(32)) | pairs[:, 1].astype(np.uint64)


def unique_pairs(pairs: np.ndarray, counts: np.ndarray | None = None):
    """Distinct rows of a (k, 2) array of indices < 2^32, sorted, with how often each occurs
    (or the sum of `counts` over its occurrences)."""
    codes = pair_codes(pairs)
    distinct, inverse = np.unique(codes, return_inverse=True)
    weights = np.ones(len(codes), np.int64) if counts is None else np.asarray(counts, np.int64)
    totals = np.bincount(inverse.ravel(), weights=weights, minlength=len(distinct))
    out = np.stack([distinct >> np.uint64(32), distinct & np.uint64(0xFFFFFFFF)], axis=1)
    return out.astype(np.int64), totals.astype(np.int64)
