"""LSH banding against datasketch: the same (bands, rows) and the same candidate pairs."""

from __future__ import annotations

import random
from collections import defaultdict
from itertools import combinations

import numpy as np
import pytest
from datasketch import MinHash, MinHashLSH
from datasketch.lsh import _optimal_param
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.config import ShingleConfig
from pipeline.similarity.lsh import band_keys, bucket_pairs, candidate_pairs, optimal_bands
from pipeline.similarity.minhash import minhash_signatures
from pipeline.similarity.shingles import shingle_hashes_batch

THRESHOLDS = [round(0.3 + 0.05 * i, 2) for i in range(14)]  # 0.3 .. 0.95


# No tie or near-tie makes our exact quadrature pick differently from scipy's quad on this
# grid; a one-off wider check (num_perm 64-512, weights also 0.1/0.9 and 0.9/0.1) agreed too.
# 256 in the full tier only: datasketch's search takes ~1 s a case there (the default is 128).
@pytest.mark.parametrize("num_perm", [64, 128, pytest.param(256, marks=pytest.mark.slow)])
@pytest.mark.parametrize("weights", [(0.5, 0.5), (0.3, 0.7), (0.7, 0.3)])
def test_optimal_bands_match_datasketch(num_perm, weights):
    for threshold in THRESHOLDS:
        expected = _optimal_param(threshold, num_perm, *weights)
        assert optimal_bands(threshold, num_perm, *weights) == expected, threshold


def test_band_keys_properties():
    rng = np.random.default_rng(0)
    sigs = rng.integers(0, 2**32, size=(3, 12), dtype=np.uint32)
    sigs[1] = sigs[0]
    sigs[2, :4] = sigs[2, 4:8] = sigs[2, 8:]  # the same values in every band
    keys = band_keys(sigs, bands=3, rows=4)
    assert keys.shape == (3, 3) and keys.dtype == np.uint64
    np.testing.assert_array_equal(keys[0], keys[1])
    assert len(set(keys[2].tolist())) == 3  # band index is mixed in
    changed = sigs.copy()
    changed[0, 5] ^= 1  # one value of band 1 only
    assert (band_keys(changed, 3, 4)[0] != keys[0]).tolist() == [False, True, False]
    assert band_keys(sigs, 2, 5).shape == (3, 2)  # unused tail values are ignored
    with pytest.raises(ValueError):
        band_keys(sigs, 4, 4)


def test_bucket_pairs_all_or_star():
    assert bucket_pairs(np.array([3, 5, 9]), 3).tolist() == [[3, 5], [3, 9], [5, 9]]
    assert bucket_pairs(np.array([3, 5, 9]), 2).tolist() == [[3, 5], [3, 9]]
    assert bucket_pairs(np.array([7]), 2).shape == (0, 2)


def reference_pairs(keys: np.ndarray, max_bucket_pairs: int) -> set[tuple[int, int]]:
    buckets = defaultdict(list)
    for doc, row in enumerate(keys.tolist()):
        for band, key in enumerate(row):
            buckets[band, key].append(doc)
    pairs = set()
    for members in buckets.values():  # members ascending: docs were appended in order
        if len(members) <= max_bucket_pairs:
            pairs |= set(combinations(members, 2))
        else:
            pairs |= {(members[0], other) for other in members[1:]}
    return pairs


# Few distinct keys in few docs: plenty of shared buckets, some larger than the star limit.
KEY_MATRICES = st.integers(1, 40).flatmap(
    lambda n: st.lists(st.lists(st.integers(0, 4), min_size=3, max_size=3), min_size=n, max_size=n)
)


@settings(max_examples=100, deadline=None)
@given(
    keys=KEY_MATRICES,
    max_bucket_pairs=st.integers(1, 12),
)
def test_candidate_pairs_equal_bucket_by_bucket_reference(keys, max_bucket_pairs):
    keys = np.array(keys, dtype=np.uint64)
    pairs = candidate_pairs(keys, max_bucket_pairs)
    assert pairs.dtype == np.int64 and (pairs[:, 0] < pairs[:, 1]).all()
    assert set(map(tuple, pairs.tolist())) == reference_pairs(keys, max_bucket_pairs)
    assert len(pairs) == len(reference_pairs(keys, max_bucket_pairs))  # unique


def planted_corpus(n_base: int, seed: int) -> list[str]:
    """Random word docs plus copies with 2-30% of their words replaced."""
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(3000)]
    docs = [[rng.choice(vocab) for _ in range(rng.randint(40, 150))] for _ in range(n_base)]
    copies = []
    for words in docs[: n_base * 2 // 3]:
        edited = list(words)
        for i in rng.sample(range(len(words)), k=round(len(words) * rng.choice([0.02, 0.1, 0.3]))):
            edited[i] = rng.choice(vocab)
        copies.append(edited)
    return [" ".join(words) for words in docs + copies]


@pytest.mark.parametrize("threshold,params", [(0.5, None), (0.8, None), (0.5, (32, 4))])
def test_candidate_pairs_equal_datasketch_lsh(threshold, params):
    texts = planted_corpus(200, seed=1)
    sigs = minhash_signatures(*shingle_hashes_batch(texts, ShingleConfig(n=3)), 128, seed=1)
    bands, rows = params or optimal_bands(threshold, 128)
    lsh = MinHashLSH(threshold=threshold, num_perm=128, params=(bands, rows))
    sketches = [MinHash(hashvalues=sig, scheme="affine32") for sig in sigs]
    for i, m in enumerate(sketches):
        lsh.insert(i, m)
    expected = {(min(i, j), max(i, j)) for i, m in enumerate(sketches) for j in lsh.query(m)}
    expected = {p for p in expected if p[0] != p[1]}
    got = candidate_pairs(band_keys(sigs, bands, rows), max_bucket_pairs=10**9)
    assert set(map(tuple, got.tolist())) == expected
    planted = {(i, i + 200) for i in range(200 * 2 // 3)}
    assert len(planted & expected) >= len(planted) // 4  # the light edits are found
