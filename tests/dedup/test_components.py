"""Connected components: the star steps alone, the in-process loop and union-find against
networkx on many graph shapes, then the Ray Data driver on one mixed graph (Ray is slow)."""

from __future__ import annotations

import itertools
import math
import random

import networkx as nx
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.dedup.components import (
    connected_components,
    connected_components_local,
    large_star,
    size_bucket,
    small_star,
    star_components_local,
    star_round,
    symmetrize,
)


def expected_labels(src: list[str], dst: list[str]) -> dict[str, str]:
    graph = nx.Graph()
    graph.add_edges_from(zip(src, dst, strict=True))
    return {node: min(comp) for comp in nx.connected_components(graph) for node in comp}


def rows(table: pa.Table, columns=("src", "dst", "changes")) -> set[tuple]:
    return set(zip(*(table[c].to_pylist() for c in columns), strict=True))


def edges_table(pairs: list[tuple[str, str]]) -> pa.Table:
    return pa.table(
        {
            "src": pa.array([a for a, _ in pairs], pa.string()),
            "dst": pa.array([b for _, b in pairs], pa.string()),
        }
    )


def chain(n: int, seed: int | None = None, prefix: str = "n") -> list[tuple[str, str]]:
    """A path of n nodes; with a seed, the ids along it are shuffled (no sorted order)."""
    ids = [f"{prefix}{i:04d}" for i in range(n)]
    if seed is not None:
        random.Random(seed).shuffle(ids)
    return list(itertools.pairwise(ids))


def mixed_graph(seed: int = 0, path_nodes: int = 200) -> list[tuple[str, str]]:
    """A path, two stars, a clique, many small random pieces, singletons by self-loop, and
    duplicated and reversed edges."""
    rng = random.Random(seed)
    pairs = chain(path_nodes, seed=seed, prefix="c")
    pairs += [("s000", f"s{i:03d}") for i in range(1, 30)]  # star centred on its minimum
    pairs += [("t099", f"t{i:03d}") for i in range(30)]  # star centred on its maximum
    pairs += [(f"k{i}", f"k{j}") for i in range(8) for j in range(i + 1, 8)]  # clique
    for piece in range(40):
        nodes = [f"r{piece:02d}-{i}" for i in range(rng.randint(2, 6))]
        pairs += [(rng.choice(nodes), rng.choice(nodes)) for _ in range(len(nodes) * 2)]
    pairs += [(f"z{i}", f"z{i}") for i in range(5)]  # singletons
    pairs += [(b, a) for a, b in rng.sample(pairs, 50)] + rng.sample(pairs, 50)
    rng.shuffle(pairs)
    return pairs


def round_bound(n: int) -> int:
    return 2 * math.ceil(math.log2(n)) + 4


# --- the pure steps on hand-made graphs ---------------------------------------------------


def test_symmetrize_keeps_self_loops_once():
    out = symmetrize(edges_table([("a", "b"), ("c", "c")]))
    assert sorted(zip(out["src"].to_pylist(), out["dst"].to_pylist(), strict=True)) == [
        ("a", "b"),
        ("b", "a"),
        ("c", "c"),
    ]


def test_large_star_links_larger_neighbours_to_the_minimum():
    # c is joined to a, b, d, e: its larger neighbours d, e move to a; a and b stay roots.
    neighbours = symmetrize(edges_table([("a", "c"), ("b", "c"), ("c", "d"), ("c", "e")]))
    assert rows(large_star(neighbours)) == {
        ("d", "a", 1),
        ("e", "a", 1),
        ("c", "a", 0),
        ("c", "b", 0),
        ("a", "a", 0),
        ("b", "b", 0),
    }


def test_small_star_links_smaller_neighbours_to_their_minimum():
    after_large = pa.table(
        {
            "src": ["d", "e", "c", "c", "a", "b", "d"],
            "dst": ["a", "a", "a", "b", "a", "b", "a"],
            "changes": [1, 1, 0, 0, 0, 0, 1],
        }  # (d, a) twice: duplicates are harmless
    )
    # c's smaller neighbours {a, b} -> b moves to a (1 change); d and e carry their 1s.
    assert rows(small_star(after_large)) == {
        ("c", "a", 1),
        ("b", "a", 0),
        ("d", "a", 2),
        ("e", "a", 1),
        ("a", "a", 0),
        ("b", "b", 0),
    }


def test_a_star_on_its_minimum_is_a_fixpoint():
    stars = star_round(edges_table([("b", "a"), ("c", "a"), ("y", "x")]))
    assert rows(stars) == {
        ("b", "a", 0),
        ("c", "a", 0),
        ("a", "a", 0),
        ("y", "x", 0),
        ("x", "x", 0),
    }
    assert rows(star_round(stars)) == rows(stars)


def test_too_few_iterations_is_an_error_not_a_wrong_answer():
    src, dst = zip(*chain(200), strict=True)
    with pytest.raises(RuntimeError, match="did not converge in 2 rounds"):
        star_components_local(src, dst, max_iterations=2)


def test_size_buckets():
    assert [size_bucket(e) for e in range(6)] == ["1", "2", "3-4", "5-8", "9-16", "17-32"]


# --- in-process loop and union-find against networkx --------------------------------------


def check_local(pairs: list[tuple[str, str]]) -> int:
    src, dst = [a for a, _ in pairs], [b for _, b in pairs]
    expected = expected_labels(src, dst)
    assert connected_components_local(src, dst) == expected
    table, rounds = star_components_local(src, dst)
    nodes = table["node"].to_pylist()
    assert len(nodes) == len(set(nodes))  # every node exactly once
    assert dict(zip(nodes, table["component"].to_pylist(), strict=True)) == expected
    return rounds


node_ids = st.text(alphabet="abcdefgh", min_size=1, max_size=2)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(node_ids, node_ids), max_size=60))
def test_random_graphs_match_networkx(pairs):
    check_local(pairs)


@pytest.mark.parametrize("seed", range(5))
def test_shapes_match_networkx(seed):
    check_local(mixed_graph(seed))


@pytest.mark.parametrize("seed", [None, 1, 2, 3])
@pytest.mark.parametrize("reverse", [False, True])
def test_long_chain_takes_logarithmic_rounds(seed, reverse):
    pairs = chain(200, seed)
    if reverse:
        pairs = [(b, a) for a, b in reversed(pairs)]
    assert check_local(pairs) <= round_bound(200)


def test_empty_and_degenerate_inputs():
    assert connected_components_local([], []) == {}
    assert star_components_local([], [])[0].num_rows == 0
    assert check_local([("a", "a"), ("a", "a")]) == 1
    check_local([("b", "a"), ("a", "b"), ("a", "b"), ("b", "b")])


# --- the Ray Data driver (each round costs seconds here: one mixed graph does most of it) ----

# The Ray test's path: 5 rounds of the star loop where the in-process tests' 200 nodes take 8
# (two shuffles each on Ray); the rounds' count growing as log2 of the path is checked above.
RAY_PATH_NODES = 40


def test_ray_matches_networkx_on_mixed_graph(ray_local, tmp_path):
    pairs = mixed_graph(seed=7, path_nodes=RAY_PATH_NODES)
    src, dst = [a for a, _ in pairs], [b for _, b in pairs]
    expected = expected_labels(src, dst)
    thirds = [edges_table(pairs[i::3]) for i in range(3)]  # several input blocks
    result = connected_components(ray_local.data.from_arrow(thirds), tmp_path, num_partitions=2)
    got = {r["node"]: r["component"] for r in result.dataset.take_all()}
    assert got == expected
    assert result.nodes == len(expected)
    assert result.components == len(set(expected.values()))
    assert 1 < result.rounds <= round_bound(RAY_PATH_NODES)
    sizes: dict[str, int] = {}
    for label in expected.values():
        sizes[label] = sizes.get(label, 0) + 1
    histogram: dict[str, int] = {}
    for size in sizes.values():
        bucket = size_bucket(math.ceil(math.log2(size)))
        histogram[bucket] = histogram.get(bucket, 0) + 1
    assert result.size_histogram == histogram
    assert histogram["1"] >= 5 and histogram["33-64"] == 1  # self-loops; the path
    # Only the last round stays on disk next to the result.
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("round-")) == [
        f"round-{result.rounds:03d}"
    ]


def test_ray_duplicates_self_loops_and_more_partitions_than_nodes(ray_local, tmp_path):
    (tmp_path / "round-050").mkdir()  # left by an earlier, longer run in this work_dir
    pairs = [("b", "a"), ("a", "b"), ("a", "b"), ("b", "b"), ("q", "q"), ("q", "q"), ("c", "b")]
    edges = ray_local.data.from_arrow(edges_table(pairs))
    result = connected_components(edges, tmp_path, num_partitions=5)
    got = {r["node"]: r["component"] for r in result.dataset.take_all()}
    assert got == {"a": "a", "b": "a", "c": "a", "q": "q"}
    assert (result.nodes, result.components, result.size_histogram) == (4, 2, {"1": 1, "3-4": 1})
    assert not (tmp_path / "round-050").exists()


def test_ray_empty_input(ray_local, tmp_path):
    empty = pa.table({"src": pa.array([], pa.string()), "dst": pa.array([], pa.string())})
    result = connected_components(ray_local.data.from_arrow(empty), tmp_path)
    assert (result.rounds, result.nodes, result.components, result.size_histogram) == (0, 0, 0, {})
    assert result.dataset.count() == 0
    assert (tmp_path / "components").is_dir()


def test_ray_raises_when_max_iterations_is_reached(ray_local, tmp_path):
    edges = ray_local.data.from_arrow(edges_table(chain(40)))
    with pytest.raises(RuntimeError, match="did not converge in 1 rounds"):
        connected_components(edges, tmp_path, max_iterations=1, num_partitions=2)
