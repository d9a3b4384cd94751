"""MinHash signatures of CSR shingle sets, bit-identical to datasketch 2.0's "affine32" scheme.

Each permutation k maps a hash h to a_k * fmix32(h) + b_k mod 2^32 (a_k odd, so a bijection);
a document's signature is the per-permutation minimum. The parameters are datasketch's, drawn
from np.random.RandomState(seed), so our signatures can be queried against (or mixed into) a
datasketch index built with `hashfunc=lambda x: x` over the same shingle hashes.

    values, offsets = shingle_hashes_batch(texts, ShingleConfig())
    sigs = minhash_signatures(values, offsets, num_perm=128, seed=1)   # (n_docs, 128) uint32
    jaccard_estimate(sigs[0], sigs[1])                                  # ~ Jaccard of docs 0, 1
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numba import njit

from pipeline.similarity.shingles import fmix32

# datasketch's value for "no element seen", so empty documents agree with an empty MinHash.
EMPTY_VALUE = np.uint32(0xFFFFFFFF)


@lru_cache(maxsize=16)
def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) uint32 arrays, exactly datasketch `MinHash(num_perm, seed).permutations`."""
    if num_perm < 1:
        raise ValueError(f"num_perm must be positive, got {num_perm}")
    gen = np.random.RandomState(seed)
    # Same draws, same order as datasketch's _init_permutations for scheme="affine32".
    a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    a.setflags(write=False)  # cached and shared: nobody may change them in place
    b.setflags(write=False)
    return a, b


@njit(cache=True)
def _signature_kernel(values, offsets, a, b):
    n_docs = offsets.shape[0] - 1
    num_perm = a.shape[0]
    out = np.empty((n_docs, num_perm), dtype=np.uint32)
    # Work in uint64 and truncate: numba widens uint32 arithmetic, and the low 32 bits of the
    # 64-bit product-plus-offset are exactly the mod-2^32 value datasketch gets by wraparound.
    a64 = a.astype(np.uint64)
    b64 = b.astype(np.uint64)
    mins = np.empty(num_perm, dtype=np.uint32)
    for d in range(n_docs):
        mins[:] = 0xFFFFFFFF
        # Hash-outer, permutation-inner: fmix once per hash, and the running minima stay in
        # L1 while the inner loop vectorises over permutations.
        for i in range(offsets[d], offsets[d + 1]):
            h = fmix32(values[i])
            for k in range(num_perm):
                v = np.uint32((a64[k] * h + b64[k]) & np.uint64(0xFFFFFFFF))
                if v < mins[k]:
                    mins[k] = v
        out[d, :] = mins
    return out


def minhash_signatures(
    values: np.ndarray, offsets: np.ndarray, num_perm: int, seed: int
) -> np.ndarray:
    """(n_docs, num_perm) uint32 signatures; a document without shingles is all 0xFFFFFFFF."""
    a, b = permutations(num_perm, seed)
    values = np.ascontiguousarray(values, dtype=np.uint32)
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    return _signature_kernel(values, offsets, a, b)


def jaccard_estimate(sig_a: np.ndarray, sig_b: np.ndarray) -> float:
    """Share of positions where two signatures agree: an unbiased Jaccard estimate."""
    if sig_a.shape != sig_b.shape:
        raise ValueError(f"signature shapes differ: {sig_a.shape} vs {sig_b.shape}")
    return float(np.count_nonzero(sig_a == sig_b)) / sig_a.shape[-1]
