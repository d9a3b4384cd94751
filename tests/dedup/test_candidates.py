"""The pure reduce steps of dedup against plain references: exact groups, near and anchor
candidates, the pair kernel, one-task components and the decision per document."""

from __future__ import annotations

import itertools
import math

import networkx as nx
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline import schema as S
from pipeline.dedup.candidates import (
    ANCHOR_MISS,
    anchors_needed,
    exact_groups,
    in_prefix,
    near_candidates,
    partial_candidates,
    unique_pairs,
)
from pipeline.dedup.components import local_components
from pipeline.dedup.decisions import (
    EXACT_DUPLICATE,
    MEMBERS_SCHEMA,
    NEAR_DUPLICATE,
    PARTIAL_DUPLICATE,
    PARTIAL_SCHEMA,
    decide,
    redirect_to_survivors,
)
from pipeline.dedup.keys import ANCHORS_SCHEMA, BANDS_SCHEMA, DIGESTS_SCHEMA
from pipeline.similarity.lsh import candidate_pairs
from pipeline.similarity.sets import intersection_sizes, pair_containment, pair_jaccard

NONE = np.empty(0, np.int64)


def test_exact_groups_keep_the_longest_then_the_smallest_id():
    rows = pa.table(
        {
            "digest_hi": [1, 1, 1, 2, 3, 3],
            "digest_lo": [7, 7, 7, 7, 9, 9],
            "idx": [0, 1, 2, 3, 4, 5],
            S.DOC_ID: ["c", "b", "a", "solo", "y", "x"],
            S.N_BYTES: [10, 12, 12, 5, 3, 3],
        },
        schema=DIGESTS_SCHEMA,
    )
    groups = exact_groups(rows, "longest")
    survivor = dict(zip(groups["idx"].to_pylist(), groups["survivor_id"].to_pylist(), strict=True))
    assert survivor == {0: "a", 1: "a", 2: "a", 4: "x", 5: "x"}  # 3 is alone: no row
    assert set(groups["group_size"].to_pylist()) == {3, 2}
    by_id = exact_groups(rows, "smallest_id")
    assert dict(zip(by_id["idx"].to_pylist(), by_id["survivor"].to_pylist(), strict=True))[0] == 2
    with pytest.raises(ValueError, match="unknown keep rule"):
        exact_groups(rows, "oldest")


@settings(max_examples=60, deadline=None)
@given(
    keys=st.lists(st.lists(st.integers(0, 5), min_size=3, max_size=3), min_size=0, max_size=30),
    cap=st.integers(2, 6),
)
def test_near_candidates_equal_the_in_memory_lsh(keys, cap):
    matrix = np.array(keys, dtype=np.uint64).reshape(-1, 3)
    # Band keys as the stage stores them: one row per (document, band), keys salted by band
    # so equal values in different bands never meet (band_keys guarantees that for real keys).
    salted = matrix + (np.arange(3, dtype=np.uint64) << np.uint64(40))
    n = len(matrix)
    rows = pa.table({"key": salted.ravel(), "idx": np.repeat(np.arange(n), 3)}, schema=BANDS_SCHEMA)
    ours = near_candidates(rows, NONE, cap)
    assert ours.tolist() == candidate_pairs(salted, cap).tolist()


def test_excluded_documents_take_no_part():
    rows = pa.table({"key": [5, 5, 5], "idx": [0, 1, 2]}, schema=BANDS_SCHEMA)
    assert near_candidates(rows, np.array([1]), 64).tolist() == [[0, 2]]


def test_partial_candidates_count_shared_anchors_and_point_part_to_whole():
    # doc 0 (100 shingles) shares anchors 1, 2, 3 with doc 1 (40) and anchor 3 with doc 2 (40).
    rows = pa.table(
        {
            "key": [1, 2, 3, 1, 2, 3, 3, 9],
            "idx": [0, 0, 0, 1, 1, 1, 2, 2],
            "n_shingles": [100, 100, 100, 40, 40, 40, 40, 40],
        },
        schema=ANCHORS_SCHEMA,
    )
    pairs, shared = partial_candidates(rows, NONE, np.array([3, 3, 2]), 0.5, 1, cap=64)
    found = {tuple(p): s for p, s in zip(pairs.tolist(), shared.tolist(), strict=True)}
    # Equal sizes: the larger index is the whole.
    assert found == {(1, 0): 3, (2, 0): 1, (1, 2): 1}


def test_anchor_star_pairs_the_largest_with_every_other():
    n = 6
    rows = pa.table(
        {"key": [7] * n, "idx": np.arange(n), "n_shingles": [10, 50, 20, 30, 40, 15]},
        schema=ANCHORS_SCHEMA,
    )
    pairs, _ = partial_candidates(rows, NONE, np.ones(n), 0.5, 1, cap=3)
    assert sorted(pairs.tolist()) == [[i, 1] for i in (0, 2, 3, 4, 5)]


def _below(count: int, n: int, p: float) -> float:
    """P(Bin(n, p) < count), summed exactly."""
    return sum(math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(count))


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.8])
def test_anchors_needed_is_the_tail_bound_of_a_pair_at_the_threshold(threshold):
    n = np.arange(0, 161)
    need = anchors_needed(n, threshold, min_shared=2)
    for a, t in zip(n.tolist(), need.tolist(), strict=True):
        floor = max(1, min(2, a))
        assert t >= floor
        if a:  # one anchor more would turn away more than ANCHOR_MISS of the pairs at it
            assert _below(t + 1, a, threshold) >= ANCHOR_MISS
        if t > floor:  # the tail decides, and turns away at most ANCHOR_MISS of them
            assert _below(t, a, threshold) <= ANCHOR_MISS


def test_anchors_needed_at_the_default_threshold():
    # Short parts need the configured two; long ones about a third of their anchors.
    assert anchors_needed(np.array([1, 8, 45, 80]), 0.5, 2).tolist() == [1, 2, 12, 26]
    assert anchors_needed(np.array([[80, 3]]), 0.5, 2).tolist() == [[26, 2]]


def test_the_prefix_is_the_rarest_anchors_after_the_unshared_ones():
    # doc 0: 10 anchors, 3 needed: a prefix of 8. Seven are its own (no row), then its shared
    # ones rarest first: key 4 (df 2) is 8th, key 6 (df 3) 9th, key 5 (df 5) 10th.
    # doc 1: 4 anchors, all shared, 2 needed: a prefix of 3 (keys 6, then 5 and 7 by key).
    idx = np.array([0, 0, 0, 1, 1, 1, 1])
    key = np.array([5, 4, 6, 9, 7, 6, 5])
    df = np.array([5, 2, 3, 9, 5, 3, 5])
    mask = in_prefix(idx, key, df, np.array([10, 10, 10, 4, 4, 4, 4]), np.full(7, 3) - idx)
    assert mask.tolist() == [False, True, False, False, True, True, True]


def _brute_partial(sets, n_shingles, n_anchors, threshold, min_shared):
    """Every (part, whole) pair, the part the smaller (shingles, then index), with its shared
    anchor count where that reaches anchors_needed."""
    found = {}
    for a, b in itertools.combinations(range(len(sets)), 2):
        part, whole = (a, b) if (n_shingles[a], a) < (n_shingles[b], b) else (b, a)
        shared = len(sets[a] & sets[b])
        if (
            shared
            and shared >= anchors_needed(np.array([n_anchors[part]]), threshold, min_shared)[0]
        ):
            found[(part, whole)] = shared
    return found


@settings(max_examples=80, deadline=None)
@given(
    common=st.lists(st.sets(st.integers(0, 30), max_size=24), min_size=0, max_size=12),
    own=st.lists(st.integers(0, 40), min_size=12, max_size=12),
    threshold=st.sampled_from([0.3, 0.5, 0.9]),
    min_shared=st.integers(1, 3),
)
def test_prefix_filtering_finds_every_pair_sharing_enough_anchors(
    common, own, threshold, min_shared
):
    # Each document: some keys from a small shared space, and `own` keys no other one has.
    sets = [c | {1000 + 100 * d + j for j in range(own[d])} for d, c in enumerate(common)]
    n_shingles = [(7 * d) % 5 + 8 * len(s) for d, s in enumerate(sets)]
    n_anchors = np.array([len(s) for s in sets], np.int64)
    rows = pa.table(
        {
            "key": [k for s in sets for k in sorted(s)],
            "idx": [d for d, s in enumerate(sets) for _ in s],
            "n_shingles": [n_shingles[d] for d, s in enumerate(sets) for _ in s],
        },
        schema=ANCHORS_SCHEMA,
    )
    pairs, counts = partial_candidates(rows, NONE, n_anchors, threshold, min_shared, cap=100)
    ours = {tuple(p): c for p, c in zip(pairs.tolist(), counts.tolist(), strict=True)}
    assert ours == _brute_partial(sets, n_shingles, n_anchors, threshold, min_shared)


def test_a_frequent_anchor_pairs_no_document_whose_prefix_ends_before_it():
    # 40 documents of 30 anchors share phrase 7; each has 29 of its own, so 7 is the last of
    # its anchors and past its prefix: no pair. Documents 40 and 41 share 20 anchors: a pair.
    own = [{1000 * d + j for j in range(29)} | {7} for d in range(40)]
    twins = [set(range(100, 120)) | {7}, set(range(100, 120)) | {7, 500}]
    sets = own + twins
    rows = pa.table(
        {
            "key": [k for s in sets for k in sorted(s)],
            "idx": [d for d, s in enumerate(sets) for _ in s],
            "n_shingles": [8 * len(s) for s in sets for _ in s],
        },
        schema=ANCHORS_SCHEMA,
    )
    n_anchors = np.array([len(s) for s in sets])
    pairs, counts = partial_candidates(rows, NONE, n_anchors, 0.5, 2, cap=64)
    assert pairs.tolist() == [[40, 41]] and counts.tolist() == [21]
    excluded, _ = partial_candidates(rows, np.array([41]), n_anchors, 0.5, 2, cap=64)
    assert excluded.tolist() == []


def test_unique_pairs_sums_counts():
    pairs, counts = unique_pairs(np.array([[3, 4], [1, 2], [3, 4]]), np.array([2, 1, 5]))
    assert pairs.tolist() == [[1, 2], [3, 4]] and counts.tolist() == [1, 7]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sets(st.integers(0, 40), max_size=25), min_size=2, max_size=8))
def test_pair_kernel_matches_numpy(sets):
    arrays = [np.array(sorted(s), dtype=np.uint32) for s in sets]
    values = np.concatenate(arrays)
    offsets = np.concatenate([[0], np.cumsum([len(a) for a in arrays])])
    pairs = np.array(list(itertools.permutations(range(len(arrays)), 2)))
    shared = intersection_sizes(values, offsets, pairs)
    jaccard = pair_jaccard(values, offsets, pairs)
    contained = pair_containment(values, offsets, pairs)
    for (a, b), k, j, c in zip(pairs, shared, jaccard, contained, strict=True):
        both = np.intersect1d(arrays[a], arrays[b]).size
        union = np.union1d(arrays[a], arrays[b]).size
        assert k == both
        assert j == pytest.approx(both / union if union else 1.0)
        assert c == pytest.approx(both / arrays[a].size if arrays[a].size else 0.0)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 30), st.integers(0, 30)), max_size=40))
def test_local_components_match_networkx(edges):
    src = np.array([a for a, _ in edges], np.int64)
    dst = np.array([b for _, b in edges], np.int64)
    nodes, component = local_components(src, dst)
    graph = nx.Graph()
    graph.add_edges_from(edges)
    expected = {n: min(c) for c in nx.connected_components(graph) for n in c}
    assert dict(zip(nodes.tolist(), component.tolist(), strict=True)) == expected


def members(rows: list[tuple]) -> pa.Table:
    """(idx, doc_id, survivor, survivor_id, similarity, size) -> MEMBERS_SCHEMA."""
    idx, ids, survivor, survivor_id, similarity, size = zip(*rows, strict=True)
    return pa.table(
        {
            "idx": list(idx), S.DOC_ID: list(ids), S.N_BYTES: [1] * len(idx),
            "survivor": list(survivor), "survivor_id": list(survivor_id),
            S.SIMILARITY: list(similarity), "group_size": list(size),
        },
        schema=MEMBERS_SCHEMA,
    )  # fmt: skip


def test_decide_drops_exact_then_near_and_flags_partial():
    docs = pa.table(
        {
            S.DOC_ID: ["a", "b", "c", "d", "e"],
            S.SOURCE: ["s"] * 5,
            S.TEXT: ["t"] * 5,
            S.WEIGHT: [1.0] * 5,
            S.PATH: ["p"] * 5,
            S.LOCATION: [None] * 5,
            S.N_BYTES: [1] * 5,
            S.NORMALIZED: [None] * 5,
            "idx": np.arange(10, 15),
        }
    )
    exact = members([(10, "a", 10, "a", 1.0, 2), (11, "b", 10, "a", 1.0, 2)])
    near = members([(12, "c", 12, "c", 1.0, 2), (13, "d", 12, "c", 0.7, 2)])
    partial = pa.table({"part": [14], "whole": [12], S.CONTAINMENT: [0.9], S.PARTIAL_DUP_OF: ["c"]})
    out = decide(docs, exact, near, partial, "flag").to_pylist()
    by_id = {r[S.DOC_ID]: r for r in out}
    assert by_id["a"][S.DROP_REASON] is None and by_id["a"][S.CLUSTER_ID] == "exact:a"
    assert by_id["b"][S.DROP_REASON] == EXACT_DUPLICATE
    assert by_id["b"][S.DROP_DETAIL] == "same text as a"
    assert by_id["d"][S.DROP_REASON] == NEAR_DUPLICATE
    assert by_id["d"][S.DROP_DETAIL] == "near-duplicate of c (jaccard 0.70)"
    assert by_id["e"][S.DROP_REASON] is None and by_id["e"][S.PARTIAL_DUP_OF] == "c"
    removed = decide(docs, exact, near, partial, "remove").to_pylist()
    assert removed[4][S.DROP_REASON] == PARTIAL_DUPLICATE
    assert removed[4][S.DROP_DETAIL] == "90% contained in c"


def test_partial_containers_are_redirected_to_their_survivor():
    near = members([(1, "one", 1, "one", 1.0, 2), (2, "two", 1, "one", 0.8, 2)])
    partial = pa.table(
        {"part": [5, 5, 1], "whole": [2, 3, 2], S.CONTAINMENT: [0.9, 0.6, 0.95]},
        schema=PARTIAL_SCHEMA,
    )
    names = {1: "one", 2: "two", 3: "three"}
    best = redirect_to_survivors(partial, near, lambda idx: pa.array([names[i] for i in idx]))
    # 5's container 2 becomes its survivor 1; 1 inside its own cluster's survivor is dropped.
    assert best.select(["part", "whole", S.PARTIAL_DUP_OF]).to_pylist() == [
        {"part": 5, "whole": 1, S.PARTIAL_DUP_OF: "one"}
    ]
