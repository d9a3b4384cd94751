"""Pure reduce steps over one key partition: exact groups, near and partial candidate pairs.

Each takes the rows of one partition (every key's rows are in one partition) and returns int64
arrays; nothing here knows about files or Ray.

    groups = exact_groups(digest_rows, keep="longest")       # idx, survivor, group_size
    pairs = near_candidates(band_rows, excluded, cap=64)     # (k, 2) a < b, unique
    pairs, shared = anchor_candidates(anchor_rows, excluded, cap=64)   # (part, whole), anchors
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline import schema as S
from pipeline.dedup.keys import DIGEST_HI, DIGEST_LO, KEY, N_SHINGLES
from pipeline.dedup.workfiles import IDX
from pipeline.similarity.lsh import run_pairs

KEEP_RULES = ("longest", "smallest_id")
SURVIVOR = "survivor"
GROUP_SIZE = "group_size"


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


def anchor_candidates(
    rows: pa.Table, excluded: np.ndarray, cap: int
) -> tuple[np.ndarray, np.ndarray]:
    """(part, whole) pairs of documents sharing an anchor, with how many anchors of this
    partition they share. The whole is the larger (shingles, then index); a bucket of more than
    `cap` documents pairs only its largest, the likeliest container, with each other one."""
    rows = _without(rows, excluded)
    key, idx = rows[KEY].to_numpy(), rows[IDX].to_numpy()
    size = rows[N_SHINGLES].to_numpy()
    shared = _shared_buckets(key)
    order = shared[np.lexsort((-idx[shared], -size[shared], key[shared]))]  # largest first
    if len(order) == 0:
        return np.empty((0, 2), np.int64), np.empty(0, np.int64)
    starts, sizes = runs(key[order])
    whole_part = run_pairs(idx[order], starts, sizes, cap)
    return unique_pairs(whole_part[:, ::-1])


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
