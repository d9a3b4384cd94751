"""Exact measures of sorted unique uint32 shingle sets: one pair, or many pairs in one kernel.

jaccard(np.array([1, 2, 3], np.uint32), np.array([2, 3, 4], np.uint32))   # -> 0.5
shared = intersection_sizes(values, offsets, pairs)   # CSR sets, (k, 2) row pairs -> (k,)
"""

from __future__ import annotations

import numpy as np
from numba import njit


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """|a ∩ b| / |a ∪ b| of two sorted unique arrays (1.0 for two empty sets)."""
    if a.size == 0 and b.size == 0:
        return 1.0
    inter = np.intersect1d(a, b, assume_unique=True).size
    return inter / (a.size + b.size - inter)


def containment(part: np.ndarray, whole: np.ndarray) -> float:
    """Share of `part`'s shingles that are also in `whole` (sorted unique arrays)."""
    if part.size == 0:
        return 0.0
    return np.intersect1d(part, whole, assume_unique=True).size / part.size


@njit(cache=True)
def _intersections(values, offsets, left, right):
    out = np.zeros(left.shape[0], dtype=np.int64)
    for k in range(left.shape[0]):
        i, i_end = offsets[left[k]], offsets[left[k] + 1]
        j, j_end = offsets[right[k]], offsets[right[k] + 1]
        shared = 0
        while i < i_end and j < j_end:  # a merge walk over two sorted runs
            a, b = values[i], values[j]
            if a == b:
                shared += 1
                i += 1
                j += 1
            elif a < b:
                i += 1
            else:
                j += 1
        out[k] = shared
    return out


def intersection_sizes(values: np.ndarray, offsets: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """|A ∩ B| for each row pair (a, b) of `pairs`, sets in CSR form (values, offsets)."""
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    return _intersections(
        np.ascontiguousarray(values, dtype=np.uint32),
        np.ascontiguousarray(offsets, dtype=np.int64),
        np.ascontiguousarray(pairs[:, 0]),
        np.ascontiguousarray(pairs[:, 1]),
    )


def pair_jaccard(values: np.ndarray, offsets: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Exact Jaccard per row pair (two empty sets: 1.0), float64."""
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    shared = intersection_sizes(values, offsets, pairs)
    sizes = np.diff(offsets)
    union = sizes[pairs[:, 0]] + sizes[pairs[:, 1]] - shared
    return np.where(union > 0, shared / np.maximum(union, 1), 1.0)


def pair_containment(values: np.ndarray, offsets: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Share of the first set's elements in the second, per row pair (empty first set: 0.0)."""
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    shared = intersection_sizes(values, offsets, pairs)
    part = np.diff(offsets)[pairs[:, 0]]
    return np.where(part > 0, shared / np.maximum(part, 1), 0.0)
