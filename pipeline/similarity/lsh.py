"""LSH banding: choose (bands, rows), hash signature bands to bucket keys, list candidate pairs.

Two documents become a candidate pair when all `rows` values of at least one band agree, which
happens with probability 1 - (1 - J^rows)^bands for Jaccard J: an S-curve whose steep part
`optimal_bands` puts at the threshold. `candidate_pairs` is the in-memory reference (tests,
benchmarks); the Ray stage groups by (band, key) and calls `bucket_pairs` per bucket.

    bands, rows = optimal_bands(0.7, 128)                   # -> (14, 9), as datasketch
    keys = band_keys(signatures, bands, rows)               # (n_docs, bands) uint64
    pairs = candidate_pairs(keys, max_bucket_pairs=64)      # (k, 2) int64, i < j, unique
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

_MUL64 = np.uint64(0x9E3779B97F4A7C15)  # odd: multiplying by it is a bijection mod 2^64
# Above this many permutations the Gauss-Legendre rule stops being exact (see optimal_bands);
# the integrands are smooth, so 256 nodes stay accurate far beyond it.
_MAX_NODES = 256


def _fmix64(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finalizer (a bijection): spreads the rolling hash over all bits."""
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xFF51AFD7ED558CCD)
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xC4CEB9FE1A85EC53)
    return h ^ (h >> np.uint64(33))


@lru_cache(maxsize=64)  # called per batch by stages; a few ms each at 256 permutations
def optimal_bands(
    threshold: float, num_perm: int, fp_weight: float = 0.5, fn_weight: float = 0.5
) -> tuple[int, int]:
    """(bands, rows) with bands * rows <= num_perm minimising the weighted integrated false
    positive (below threshold) plus false negative (above it) probability.

    Same search and tie order as datasketch's `_optimal_param` (bands outer, rows inner, the
    first strict minimum wins), with numpy Gauss-Legendre quadrature instead of scipy's quad:
    1 - (1 - s^r)^b is a polynomial of degree b*r <= num_perm, so num_perm // 2 + 1 nodes
    integrate it exactly.
    """
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    b_list = [b for b in range(1, num_perm + 1) for _ in range(num_perm // b)]
    r_list = [r for b in range(1, num_perm + 1) for r in range(1, num_perm // b + 1)]
    b = np.array(b_list, dtype=np.float64)[:, None]
    r = np.array(r_list, dtype=np.float64)[:, None]
    x, w = np.polynomial.legendre.leggauss(min(num_perm // 2 + 1, _MAX_NODES))
    s_fp = threshold * (x + 1) / 2  # nodes mapped to [0, threshold]
    s_fn = threshold + (1 - threshold) * (x + 1) / 2  # and to [threshold, 1]
    fp = ((1 - (1 - s_fp**r) ** b) * w).sum(axis=1) * (threshold / 2)
    fn = (((1 - s_fn**r) ** b) * w).sum(axis=1) * ((1 - threshold) / 2)
    best = int(np.argmin(fp * fp_weight + fn * fn_weight))
    return b_list[best], r_list[best]


def band_keys(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(n_docs, bands) uint64: a hash of each band's `rows` signature values.

    Each band's rolling hash starts from a different seed, and seed -> key is injective for
    fixed values (times an odd power, then a bijection), so equal values in two different
    bands never give equal keys: a key alone names its band's bucket.
    """
    n_docs, num_perm = signatures.shape
    if bands * rows > num_perm:
        raise ValueError(f"bands * rows = {bands * rows} > num_perm = {num_perm}")
    sig = signatures[:, : bands * rows].reshape(n_docs, bands, rows).astype(np.uint64)
    h = np.broadcast_to(_fmix64(np.arange(1, bands + 1, dtype=np.uint64)), (n_docs, bands))
    for j in range(rows):  # polynomial rolling hash; uint64 arrays wrap silently
        h = h * _MUL64 + sig[:, :, j]
    return _fmix64(h)


def run_pairs(
    members: np.ndarray, starts: np.ndarray, sizes: np.ndarray, max_bucket_pairs: int
) -> np.ndarray:
    """Pairs from runs members[start : start + size]; each run's members sorted ascending."""
    run_of = np.repeat(np.arange(len(starts)), sizes)
    pos = np.arange(len(members))
    rank = pos - starts[run_of]
    size = sizes[run_of]
    # Star buckets: a bucket of m near-identical docs (boilerplate, a mirrored page) costs
    # m(m-1)/2 pair checks for what m-1 checks against one member already cluster.
    star = size > max_bucket_pairs
    star_second = pos[star & (rank > 0)]
    star_first = starts[run_of[star_second]]
    # All pairs: element at rank k pairs with the m-1-k members after it.
    later = np.where(star, 0, size - 1 - rank)
    first = np.repeat(pos, later)
    group_start = np.repeat(np.cumsum(later) - later, later)
    second = first + 1 + (np.arange(len(first)) - group_start)
    left = members[np.concatenate([first, star_first])]
    right = members[np.concatenate([second, star_second])]
    return np.stack([left, right], axis=1).astype(np.int64)


def bucket_pairs(member_indices_sorted: np.ndarray, max_bucket_pairs: int) -> np.ndarray:
    """(k, 2) int64 pairs (i < j) of one bucket: all pairs, or a star from its first member
    when the bucket has more than `max_bucket_pairs` members."""
    members = np.sort(np.asarray(member_indices_sorted, dtype=np.int64))
    if len(members) < 2:
        return np.empty((0, 2), dtype=np.int64)
    starts, sizes = np.array([0]), np.array([len(members)])
    return run_pairs(members, starts, sizes, max_bucket_pairs)


def candidate_pairs(keys: np.ndarray, max_bucket_pairs: int) -> np.ndarray:
    """(k, 2) int64 unique document pairs (i < j, sorted) sharing at least one band key."""
    n_docs, bands = keys.shape
    # Salting each key with its band makes a (band, key) bucket a single uint64 (keys from
    # band_keys already differ across bands; this keeps arbitrary key matrices exact too), so
    # one unstable argsort finds the buckets: 3.5 ms on 290k keys vs 12 ms stable, 16 ms lexsort.
    salts = _fmix64(np.arange(1, bands + 1, dtype=np.uint64) * _MUL64)
    key = (keys ^ salts).T.ravel()
    doc = np.tile(np.arange(n_docs, dtype=np.int64), bands)
    order = np.argsort(key)
    key = key[order]
    new_run = np.ones(len(key), dtype=bool)
    new_run[1:] = key[1:] != key[:-1]
    starts = np.flatnonzero(new_run)
    sizes = np.diff(np.append(starts, len(key)))
    shared = sizes >= 2  # almost every bucket holds one document: drop those before pairing
    starts, sizes = starts[shared], sizes[shared]
    if len(sizes) == 0:
        return np.empty((0, 2), dtype=np.int64)
    packed = np.cumsum(sizes) - sizes
    members = doc[order[np.arange(sizes.sum()) + np.repeat(starts - packed, sizes)]]
    # Docs ascending inside each bucket: the star's centre is its smallest document.
    members = members[np.lexsort((members, np.repeat(np.arange(len(sizes)), sizes)))]
    pairs = run_pairs(members, packed, sizes, max_bucket_pairs)
    # A pair shares several bands when the docs are similar: keep it once.
    codes = np.unique(pairs[:, 0] * n_docs + pairs[:, 1])
    return np.stack([codes // max(n_docs, 1), codes % max(n_docs, 1)], axis=1)
