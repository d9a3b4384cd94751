"""Connected components of the near-duplicate graph, on Ray Data, label = smallest doc id.

Algorithm: alternating large-star / small-star (Kiveris et al. 2014, "Connected Components
in MapReduce and Beyond"); a round is one of each and the rounds needed grow as O(log n).
With m(u) the smallest of u and its neighbours:

* large-star: every node u links each strictly larger neighbour v to m(u), edge (v, m(u));
* small-star: every node u links itself and each smaller neighbour to the smallest of them.

The graph keeps its components and converges to one star per component, centred on its
smallest node. Each node's output depends on its own neighbour list only, so a round is two
shuffles (`groupby("src").map_groups`) and no worker holds more than one partition of edges.
A node with no smaller neighbour (a star centre, or a node seen only in a self-loop) also
emits a marker row (u, u), so the converged table is the answer: node = src, component = dst.
Every edge rewritten counts in `changes`. A round with none is an exact convergence test, not
a checksum: no large-star change means no node has both smaller and larger neighbours, and
no small-star change means none has two smaller ones; so every component is a star on its
minimum. The driver writes each round to Parquet, reads it back, and sees only that count.

    result = connected_components(ray.data.read_parquet(edges_dir), work_dir / "cc")
    result.dataset          # node, component; also in work_dir/cc/components/
    result.size_histogram   # {"2": 812, "3-4": 95, "5-8": 7}
    connected_components_local(["b", "c"], ["a", "b"])   # {"a": "a", "b": "a", "c": "a"}
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import ray
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components as csgraph_components

from pipeline import schema as S
from pipeline.plumbing.resources import default_partitions
from pipeline.plumbing.sink import AccountingSink, SinkResult
from pipeline.ray_ops import count_rows, read_parts, write_parts

SRC, DST, CHANGES = "src", "dst", "changes"
NODE, COMPONENT = "node", "component"
EDGES_SCHEMA = pa.schema([(SRC, pa.string()), (DST, pa.string()), (CHANGES, pa.int64())])
COMPONENTS_SCHEMA = pa.schema([(NODE, pa.string()), (COMPONENT, pa.string())])


@dataclass
class ComponentsResult:
    dataset: ray.data.Dataset  # node, component (the smallest node of its component)
    rounds: int
    nodes: int
    components: int
    size_histogram: dict[str, int] = field(default_factory=dict)  # size bucket -> components


# --- pure steps: Arrow in, Arrow out; any table whose nodes' neighbour lists are complete ---


def _edges(src: pa.Array, dst: pa.Array, changes: pa.Array | np.ndarray | int) -> pa.Table:
    if isinstance(changes, int):
        changes = np.full(len(src), changes, np.int64)
    return pa.table([src, dst, pa.array(changes).cast(pa.int64())], schema=EDGES_SCHEMA)


def symmetrize(edges: pa.Table) -> pa.Table:
    """Each edge in both directions, so grouping by `src` gives every node all its neighbours."""
    edges = edges.select([SRC, DST]).cast(pa.schema([(SRC, pa.string()), (DST, pa.string())]))
    reverse = pa.table({SRC: edges[DST], DST: edges[SRC]})
    return pa.concat_tables([edges, reverse.filter(pc.not_equal(reverse[SRC], reverse[DST]))])


def _sorted_runs(edges: pa.Table) -> tuple[pa.Table, np.ndarray, np.ndarray]:
    """Rows sorted by (src, dst); whether each row starts its src's run, and repeats a pair."""
    edges = edges.sort_by([(SRC, "ascending"), (DST, "ascending")])
    new_src, new_dst = _differs_from_previous(edges[SRC]), _differs_from_previous(edges[DST])
    return edges, new_src, ~(new_src | new_dst)


def _differs_from_previous(column: pa.ChunkedArray) -> np.ndarray:
    column = column.combine_chunks()
    if len(column) == 0:
        return np.zeros(0, bool)
    later = pc.not_equal(column[1:], column[:-1]).to_numpy(zero_copy_only=False)
    return np.concatenate([[True], later])


def large_star(neighbours: pa.Table) -> pa.Table:
    """Link each node's strictly larger neighbours to its smallest (self included); a node
    with no smaller neighbour also emits a marker (u, u). Input: symmetrized edges."""
    edges, new_src, repeated = _sorted_runs(neighbours.select([SRC, DST]))
    edges = edges.filter(pa.array(~repeated))
    new_src = new_src[~repeated]
    starts = np.flatnonzero(new_src)
    # Sorted by dst within a node, so its run's first dst is its smallest neighbour.
    m = pc.min_element_wise(edges[SRC], edges[DST].take(starts[np.cumsum(new_src) - 1]))
    up = pc.greater(edges[DST], edges[SRC])
    moved = pc.not_equal(m, edges[SRC])  # edge (v, u) becomes (v, m(u))
    is_root = pc.and_(pa.array(new_src), pc.invert(moved))
    roots = edges[SRC].filter(is_root)
    return pa.concat_tables(
        [_edges(edges[DST].filter(up), m.filter(up), moved.filter(up)), _edges(roots, roots, 0)]
    )


def small_star(edges: pa.Table) -> pa.Table:
    """Link each node and its smaller neighbours to the smallest of them (a marker, alone
    in its group, comes out as it went in).

    Input: large_star's output. A node's `changes` (its edges rewritten here plus those
    large_star counted) ride on its (u, m) row, so the round's sum says whether anything moved.
    """
    edges, new_src, repeated = _sorted_runs(edges)
    starts = np.flatnonzero(new_src)
    carried = np.add.reduceat(edges[CHANGES].to_numpy(), starts) if len(starts) else starts
    distinct = np.add.reduceat(~repeated, starts) if len(starts) else starts
    keep = pa.array(~repeated & ~new_src)  # each node's other distinct neighbours
    m = edges[DST].take(starts[np.cumsum(new_src) - 1])
    return pa.concat_tables(
        [
            _edges(edges[SRC].take(starts), edges[DST].take(starts), distinct - 1 + carried),
            _edges(edges[DST].filter(keep), m.filter(keep), 0),
        ]
    )


def star_round(edges: pa.Table) -> pa.Table:
    """One round on a whole table in memory (tests, small graphs): large- then small-star."""
    return small_star(large_star(symmetrize(edges)))


def components_from_stars(stars: pa.Table) -> pa.Table:
    """The converged round's table as (node, component)."""
    return pa.table([stars[SRC], stars[DST]], schema=COMPONENTS_SCHEMA)


def star_components_local(
    src: Sequence[str], dst: Sequence[str], max_iterations: int = 64
) -> tuple[pa.Table, int]:
    """The Ray algorithm run in one process: (node, component) table and rounds taken."""
    edges = pa.table({SRC: pa.array(src, pa.string()), DST: pa.array(dst, pa.string())})
    for rounds in range(1, max_iterations + 1):
        edges = star_round(edges)
        if pc.sum(edges[CHANGES]).as_py() in (0, None):
            return components_from_stars(edges), rounds
    raise RuntimeError(f"connected components did not converge in {max_iterations} rounds")


def connected_components_local(src: Sequence[str], dst: Sequence[str]) -> dict[str, str]:
    """Reference union-find: node -> smallest node of its component (small inputs only)."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]  # path halving
            x = parent[x]
        return x

    for a, b in zip(src, dst, strict=True):
        ra, rb = find(a), find(b)
        if ra != rb:  # the smaller root wins, so every root is its component's minimum
            parent[max(ra, rb)] = min(ra, rb)
    return {x: find(x) for x in parent}


# --- the Ray Data driver ---------------------------------------------------------------------


def connected_components(
    edges: ray.data.Dataset,
    work_dir: Path,
    max_iterations: int = 64,
    num_partitions: int | None = None,
) -> ComponentsResult:
    """Components of the graph whose edges are `edges` (string columns src, dst).

    `work_dir` must be visible to every worker (shared storage on a cluster). Rounds are
    written to work_dir/round-NNN/ (the previous one is deleted once the next is on disk)
    and the result to work_dir/components/.
    """
    work_dir = Path(work_dir)
    partitions = num_partitions or default_partitions()
    for stale in [*work_dir.glob("round-*"), work_dir / "components"]:  # an earlier run's
        shutil.rmtree(stale, ignore_errors=True)
    # Round 0 materialises the input once, so a lazy upstream stage is not run again.
    # Plain write_parquet here: Ray skips map_batches on empty blocks, so the sink would get
    # an empty block without its reason column; and Ray writes no file at all for no rows.
    previous = work_dir / "round-000"
    write_parts(edges.map_batches(_as_edges, batch_format="pyarrow"), previous)
    if count_rows(previous) == 0:
        (work_dir / "components").mkdir(parents=True)
        empty = read_parts(work_dir / "components", COMPONENTS_SCHEMA)
        return ComponentsResult(dataset=empty, rounds=0, nodes=0, components=0)
    for rounds in range(1, max_iterations + 1):
        current = (
            ray.data.read_parquet(str(previous))
            .map_batches(symmetrize, batch_format="pyarrow")
            .groupby(SRC, num_partitions=partitions)
            .map_groups(large_star, batch_format="pyarrow")
            .groupby(SRC, num_partitions=partitions)
            .map_groups(small_star, batch_format="pyarrow")
        )
        current_dir = work_dir / f"round-{rounds:03d}"
        written = _write(current, current_dir, EDGES_SCHEMA)
        shutil.rmtree(previous)
        previous = current_dir
        # The sink counted rows per `changes` value while writing: no extra pass for the check.
        if set(written.rows_out_by) <= {0}:
            stars = ray.data.read_parquet(str(current_dir))
            return _finish(
                stars.map_batches(components_from_stars, batch_format="pyarrow"),
                work_dir,
                rounds,
                partitions,
            )
    raise RuntimeError(
        f"connected components did not converge in {max_iterations} rounds; the last round "
        f"is in {previous}. Raise max_iterations (rounds grow as log2 of the largest component)."
    )


def _as_edges(batch: pa.Table) -> pa.Table:
    return _edges(batch[SRC].cast(pa.string()), batch[DST].cast(pa.string()), 0)


def _write(ds: ray.data.Dataset, directory: Path, schema: pa.Schema) -> SinkResult:
    """Write through the project's sink, which also counts rows per `changes` value."""
    count_by = CHANGES if CHANGES in schema.names else None
    # No row is ever dropped here; the sink wants its reason column all the same.
    sink = AccountingSink(directory, directory.parent / "quarantine", schema, count_by=count_by)
    ds.map_batches(_no_drop_reason, batch_format="pyarrow").write_datasink(sink)
    return sink.result


def _no_drop_reason(batch: pa.Table) -> pa.Table:
    return batch.append_column(S.DROP_REASON, pa.nulls(batch.num_rows, pa.string()))


def _finish(
    components: ray.data.Dataset, work_dir: Path, rounds: int, partitions: int
) -> ComponentsResult:
    out_dir = work_dir / "components"
    written = _write(components, out_dir, COMPONENTS_SCHEMA)
    dataset = read_parts(out_dir, COMPONENTS_SCHEMA)
    by_exponent = _components_by_size_exponent(dataset, partitions)
    return ComponentsResult(
        dataset=dataset,
        rounds=rounds,
        nodes=written.rows_out,
        components=sum(by_exponent.values()),
        size_histogram={size_bucket(e): n for e, n in sorted(by_exponent.items())},
    )


def _components_by_size_exponent(components: ray.data.Dataset, partitions: int) -> Counter:
    """{ceil(log2(size)): components}. Blocks send their own small histograms to the driver
    (blocks x log2(largest) rows), which is cheaper here than a second shuffle."""
    sizes = components.groupby(COMPONENT, num_partitions=partitions).count()
    total: Counter = Counter()
    for row in sizes.map_batches(_size_exponents, batch_format="pyarrow").iter_rows():
        total[row["values"]] += row["counts"]
    return total


def _size_exponents(sizes: pa.Table) -> pa.Table:
    size = sizes["count()"].to_numpy()
    # frexp's exponent of size-1 is ceil(log2(size)): 1 -> 0, 2 -> 1, 3..4 -> 2, 5..8 -> 3.
    exponent = np.frexp((size - 1).astype(np.float64))[1].astype(np.int64)
    return pa.Table.from_struct_array(pc.value_counts(pa.array(exponent)))


def size_bucket(exponent: int) -> str:
    """The label of sizes in (2**(exponent-1), 2**exponent]: "1", "2", "3-4", "5-8", ..."""
    low, high = 2 ** (exponent - 1) + 1 if exponent else 1, 2**exponent
    return str(high) if low == high else f"{low}-{high}"


def local_components(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Components of an integer edge list in one process (scipy's union-find over CSR):
    (nodes, the smallest node of each one's component), nodes ascending."""
    nodes, local = np.unique(np.concatenate([src, dst]), return_inverse=True)
    n = len(nodes)
    if n == 0:
        return nodes.astype(np.int64), nodes.astype(np.int64)
    local = local.ravel()
    graph = coo_matrix((np.ones(len(src), np.int8), (local[: len(src)], local[len(src) :])), (n, n))
    _, labels = csgraph_components(graph, directed=False)
    # Nodes are ascending, so a label's first node is its component's smallest.
    first = np.full(labels.max() + 1, n, np.int64)
    np.minimum.at(first, labels, np.arange(n))
    return nodes.astype(np.int64), nodes[first[labels]].astype(np.int64)
