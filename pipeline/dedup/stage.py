"""The dedup stage: exact, near (MinHash-LSH, verified, components) and partial duplicates.

Plain Ray tasks over files in <stage>/work/ (no Ray Data shuffle, no global sort; documents
are integer indices in the hot path). Each step is one wave of tasks:

1. keys       per unit of input: shingles, digest, MinHash band keys and anchors, in one
              pass; written partitioned by key hash straight from the map task
2. exact      per digest partition: groups of equal texts, a survivor each
3. anchors    per key partition: the anchors 2+ documents hold, with how many; by unit
   prefix     per unit: each document's shared anchors (its anchor set) and which of them
              are in its prefix (candidates.py: prefix filtering); by key partition
   candidates per key partition: band buckets -> near pairs, prefix anchors -> (part, whole)
              pairs; written partitioned by pair
   pairs      per pair partition: each pair once; partial ones sharing enough anchors
   sets       per unit: the exact shingle sets of its candidate documents only
4. verify     per pair partition: exact Jaccard (near) or containment (partial)
5. components one union-find task below `dedup.local_components_max_edges` edges, else
              distributed large-star/small-star rounds
6. clusters   per component partition: a survivor by `dedup.keep`, Jaccard to it
7. decide     per unit: each document kept or dropped with its reason, written through the
              accounting sink; the clusters table beside it

Outputs: <stage>/data (kept documents), quarantine/dedup (dropped, with reason and detail),
<stage>/clusters (one row per member of every exact and near cluster).
The pure logic is in keys.py, candidates.py and decisions.py; this file moves files and tasks.
"""

from __future__ import annotations

import shutil
import uuid
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import ray

from pipeline import schema as S
from pipeline.config import ClusterConfig, DedupConfig
from pipeline.dedup.candidates import (
    DF,
    GROUP_SIZE,
    PREFIX_SCHEMA,
    SHARED_ANCHORS_SCHEMA,
    SURVIVOR,
    anchor_sets,
    anchors_needed,
    exact_groups,
    in_prefix,
    near_candidates,
    pair_codes,
    prefix_candidates,
    shared_anchors,
    unique_pairs,
)
from pipeline.dedup.components import connected_components, local_components, size_bucket
from pipeline.dedup.decisions import (
    COMPONENTS_SCHEMA,
    DST,
    EDGES_SCHEMA,
    EXACT_DUPLICATE,
    MEMBERS_SCHEMA,
    NEAR_DUPLICATE,
    PART,
    PARTIAL_DUPLICATE,
    PARTIAL_SCHEMA,
    SRC,
    SURVIVOR_ID,
    cluster_rows,
    decide,
    enough_anchors,
    near_clusters,
    redirect_to_survivors,
    shared_anchor_counts,
    verify_near,
    verify_partial,
)
from pipeline.dedup.keys import (
    ANCHORS_SCHEMA,
    BANDS_SCHEMA,
    DIGESTS_SCHEMA,
    KEY,
    document_keys,
    document_sets,
)
from pipeline.dedup.workfiles import (
    IDX,
    N_ANCHORS,
    SETS_FILE_SCHEMA,
    DocStore,
    Unit,
    partition_of,
    plan_units,
    read_partition,
    read_table,
    read_unit,
    unit_file,
    write_partitioned,
    write_table,
)
from pipeline.plumbing.resources import default_partitions, task_resources
from pipeline.plumbing.sink import AccountingSink, SinkResult, combine_results
from pipeline.similarity.lsh import optimal_bands
from pipeline.stage import DOCS, RunContext, Stage
from pipeline.stats import StageStats, StepTimer

PAIRS_SCHEMA = pa.schema([pa.field("a", pa.int64()), pa.field("b", pa.int64())])
NEEDED_SCHEMA = pa.schema([pa.field(IDX, pa.int64())])


def resolve_bands(cfg: DedupConfig) -> tuple[int, int]:
    if cfg.bands and cfg.rows:
        if cfg.bands * cfg.rows > cfg.num_perm:
            raise ValueError(f"dedup.bands * dedup.rows must be <= dedup.num_perm ({cfg.num_perm})")
        return cfg.bands, cfg.rows
    return optimal_bands(cfg.threshold, cfg.num_perm, cfg.fp_weight, cfg.fn_weight)


# Documents per key partition when the config leaves the count open: a map task's share
# (dedup.unit_rows' default), so a partition's anchor rows (~80 a 3.5 KB document, 16 bytes
# each: ~26 MB) and their sort stay ~100 MB at any corpus size. bench/scale.py, 80k -> 320k
# documents: the largest worker's private memory 493 -> 520 MiB; 501 -> 632 at 200_000.
DOCS_PER_PARTITION = 20_000


def partitions_for(cluster: ClusterConfig, units: list[Unit]) -> int:
    """Key and pair partitions: as configured (`cluster.shuffle_partitions`), else enough for
    the cluster's CPUs and for the corpus (one per DOCS_PER_PARTITION documents), so a
    worker's share does not grow with it."""
    if cluster.shuffle_partitions:
        return cluster.shuffle_partitions
    n_docs = units[-1].stop if units else 0
    return max(default_partitions(), -(-n_docs // DOCS_PER_PARTITION))


class DedupStage(Stage):
    name = "dedup"
    produces = DOCS

    def settings(self):
        return self.config.dedup

    def run(self, ctx: RunContext) -> StageStats:
        cfg = self.config.dedup
        work = Work(ctx.stage_dir(self.name) / "work")
        shutil.rmtree(work.root, ignore_errors=True)
        clusters_dir = ctx.stage_dir(self.name) / "clusters"
        shutil.rmtree(clusters_dir, ignore_errors=True)
        bands, rows = resolve_bands(cfg)
        units = plan_units(ctx.input_dir, cfg.unit_rows)
        parts = partitions_for(self.config.cluster, units)
        steps = StepTimer(self.name)
        extra: dict = {"bands": bands, "rows": rows, "threshold": cfg.threshold}

        with steps("keys"):
            mapped = _wave(_keys_task, [(u, cfg, bands, rows, parts, work) for u in units])
        n_docs = sum(m["docs"] for m in mapped)
        extra["anchors_per_doc"] = round(sum(m["anchors"] for m in mapped) / max(n_docs, 1), 1)
        with steps("exact"):
            exact = _wave(_exact_task, [(p, units, cfg, work, clusters_dir) for p in range(parts)])
        with steps("anchors"):
            held = _wave(_anchors_task, [(p, units, cfg, work) for p in range(parts)])
        extra["shared_anchors"] = sum(held)
        with steps("prefix"):
            prefixes = _wave(_prefix_task, [(u, units, cfg, parts, work) for u in units])
        extra["prefix_anchors"] = sum(prefixes)
        with steps("candidates"):
            found = _wave(_candidates_task, [(p, units, cfg, parts, work) for p in range(parts)])
        extra["anchor_pairs"] = sum(f["partial"] for f in found)
        with steps("pairs"):
            paired = _wave(_pairs_task, [(v, units, cfg, work) for v in range(parts)])
        extra["near_candidates"] = sum(f["near"] for f in paired)
        extra["partial_candidates"] = sum(f["partial"] for f in paired)
        with steps("sets"):
            shingled = _wave(_sets_task, [(u, cfg, work) for u in units])
        extra["candidate_docs"] = sum(shingled)
        with steps("verify"):
            verified = _wave(_verify_task, [(v, units, cfg, work) for v in range(parts)])
        edges = sum(v["edges"] for v in verified)
        extra["verified_edges"] = edges
        extra["edges_per_doc"] = round(edges / max(n_docs, 1), 4)
        extra["partial_pairs"] = sum(v["partial"] for v in verified)
        with steps("components"):
            extra.update(_components(work, cfg, edges, parts))
        with steps("clusters"):
            near = _wave(
                _clusters_task, [(c, units, cfg, parts, work, clusters_dir) for c in range(parts)]
            )
        sink = self.sink(ctx, S.DEDUP_SCHEMA)
        with steps("decide"):
            decided = _wave(_decide_task, [(u, units, cfg, work, sink) for u in units])
        written = combine_results(d["written"] for d in decided)
        extra.update(
            exact_duplicates=written.dropped.get(EXACT_DUPLICATE, 0),
            near_duplicates=written.dropped.get(NEAR_DUPLICATE, 0),
            partial_duplicates=written.dropped.get(PARTIAL_DUPLICATE, 0),
            partial_flagged=sum(d["flagged"] for d in decided),
            cluster_size_histogram=_histogram(exact, near),
            step_seconds=steps.seconds,
        )
        return self.stats(
            written, rows_in=n_docs, bytes_in=sum(m["bytes"] for m in mapped), extra=extra
        )


class Work:
    """Where each step's files go under the stage's work directory."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.docs = self.root / "docs"  # per unit: doc_id, n_bytes, anchors per document
        self.sets = self.root / "sets"  # per unit: shingle sets of its candidate documents
        self.digests = self.root / "digests"  # per unit, partitioned by digest
        self.bands = self.root / "bands"  # per unit, partitioned by band key
        self.anchors = self.root / "anchors"  # per unit, partitioned by anchor
        self.shared = self.root / "shared"  # per key partition: anchors 2+ documents hold
        self.shared_by_unit = self.root / "shared_by_unit"  # ... the same, by unit
        self.anchor_sets = self.root / "anchor_sets"  # per unit: each document's shared anchors
        self.prefix = self.root / "prefix"  # per unit, by key partition: its prefix anchors
        self.exact = self.root / "exact"  # per digest partition: exact group members
        self.near_pairs = self.root / "near_pairs"  # per key partition, partitioned by pair
        self.partial_pairs = self.root / "partial_pairs"
        self.near_candidates = self.root / "near_candidates"  # per pair partition, unique
        self.partial_candidates = self.root / "partial_candidates"  # ... with enough anchors
        self.needed = self.root / "needed"  # per pair partition, by unit: the pairs' documents
        self.edges = self.root / "edges"  # per pair partition: verified near pairs
        self.partial = self.root / "partial"  # per pair partition: verified containment
        self.components = self.root / "components"  # idx, component
        self.near = self.root / "near"  # per component partition: near cluster members

    @staticmethod
    def files(directory: Path) -> list[Path]:
        return sorted(Path(directory).glob("*.arrow"))

    def table(self, directory: Path, schema: pa.Schema) -> pa.Table:
        """Every file of a small result directory, as one table."""
        tables = [read_table(f) for f in self.files(directory)]
        return pa.concat_tables(tables) if tables else schema.empty_table()


def _wave(fn, arguments: list[tuple]) -> list:
    """Run `fn` as one Ray task per argument tuple; results in order. Tasks are named
    "dedup.<step>" (the dashboard's and the process titles' name). Ray retries a task whose
    worker died; every task writes its own files whole, so a retry repeats it exactly."""
    name = "dedup." + fn.__name__.strip("_").removesuffix("_task")
    task = ray.remote(**task_resources())(fn).options(name=name)
    return ray.get([task.remote(*args) for args in arguments])


# --- 1. keys -------------------------------------------------------------------------------


def _keys_task(unit: Unit, cfg: DedupConfig, bands: int, rows: int, parts: int, work: Work):
    batch = read_unit(unit, [S.DOC_ID, S.TEXT, S.N_BYTES])
    tables = [
        document_keys(batch.slice(i, cfg.batch_rows), unit.start + i, cfg, bands, rows)
        for i in range(0, max(batch.num_rows, 1), cfg.batch_rows)
    ]
    docs = pa.concat_tables([t.docs for t in tables])
    write_table(unit_file(work.docs, unit), docs)
    for directory, name, schema, key in (
        (work.digests, "digests", DIGESTS_SCHEMA, "digest_hi"),
        (work.bands, "bands", BANDS_SCHEMA, KEY),
        (work.anchors, "anchors", ANCHORS_SCHEMA, KEY),
    ):
        table = pa.concat_tables([getattr(t, name) for t in tables]).cast(schema)
        write_partitioned(
            unit_file(directory, unit), table, partition_of(table[key].to_numpy(), parts), parts
        )
    return {
        "docs": batch.num_rows,
        "bytes": int(np.sum(batch[S.N_BYTES].to_numpy())) if batch.num_rows else 0,
        "anchors": int(pa.compute.sum(docs["n_anchors"]).as_py() or 0),
    }


# --- 2. exact ------------------------------------------------------------------------------


def _exact_task(p: int, units: list[Unit], cfg: DedupConfig, work: Work, clusters_dir: Path):
    members = MEMBERS_SCHEMA.empty_table()
    if cfg.exact:
        rows = read_partition([unit_file(work.digests, u) for u in units], p, DIGESTS_SCHEMA)
        groups = exact_groups(rows, cfg.keep)
        members = pa.table(
            {
                IDX: groups[IDX],
                S.DOC_ID: groups[S.DOC_ID],
                S.N_BYTES: groups[S.N_BYTES],
                SURVIVOR: groups[SURVIVOR],
                SURVIVOR_ID: groups[SURVIVOR_ID],
                S.SIMILARITY: pa.array(np.ones(groups.num_rows, np.float32)),
                GROUP_SIZE: groups[GROUP_SIZE],
            },
            schema=MEMBERS_SCHEMA,
        )
    write_table(unit_file(work.exact, p), members)
    _write_clusters(clusters_dir / f"exact-{p:05d}.parquet", cluster_rows(members, "exact"))
    return _survivor_sizes(members)


def _write_clusters(path: Path, rows: pa.Table) -> None:
    if rows.num_rows:
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(rows, path, compression="zstd")


def _survivor_sizes(members: pa.Table) -> dict[int, int]:
    """{cluster size: clusters}, counted at each survivor's row."""
    is_survivor = members[IDX].to_numpy() == members[SURVIVOR].to_numpy()
    return dict(Counter(members[GROUP_SIZE].to_numpy()[is_survivor].tolist()))


def _histogram(exact: list[dict], near: list[dict]) -> dict[str, dict[str, int]]:
    out = {}
    for kind, counts in (("exact", exact), ("near", near)):
        buckets: Counter = Counter()
        for part in counts:
            for size, n in part.items():
                buckets[size_bucket(int(size - 1).bit_length())] += n
        if buckets:
            out[kind] = dict(sorted(buckets.items()))
    return out


def _excluded(work: Work) -> np.ndarray:
    """Exact duplicates (not their survivors): no other step looks at them."""
    members = work.table(work.exact, MEMBERS_SCHEMA)
    idx, survivor = members[IDX].to_numpy(), members[SURVIVOR].to_numpy()
    return np.sort(idx[idx != survivor])


# --- 3. candidates ---------------------------------------------------------------------------


def _anchors_task(p: int, units: list[Unit], cfg: DedupConfig, work: Work) -> int:
    """Per key partition: the rows of anchors that 2+ documents hold, with that count; kept
    for the candidates step and written by unit for the prefix step."""
    shared = SHARED_ANCHORS_SCHEMA.empty_table()
    if cfg.containment.enabled:
        rows = read_partition([unit_file(work.anchors, u) for u in units], p, ANCHORS_SCHEMA)
        shared = shared_anchors(rows.cast(ANCHORS_SCHEMA), _excluded(work))
    write_table(unit_file(work.shared, p), shared)
    starts = np.array([u.start for u in units], dtype=np.int64)
    owner = np.searchsorted(starts, shared[IDX].to_numpy(), side="right") - 1
    write_partitioned(unit_file(work.shared_by_unit, p), shared, owner, len(units))
    return shared.num_rows


def _prefix_task(unit: Unit, units: list[Unit], cfg: DedupConfig, parts: int, work: Work) -> int:
    """Per unit: its documents' shared anchors as sets (for the pairs step's counts), and the
    ones in their prefixes, written by key partition."""
    rows = read_partition(Work.files(work.shared_by_unit), unit.number, SHARED_ANCHORS_SCHEMA)
    idx, key = rows[IDX].to_numpy(), rows[KEY].to_numpy()
    docs, values, offsets = anchor_sets(idx, key)
    sets = pa.table(
        {
            IDX: docs,
            "shingles": pa.LargeListArray.from_arrays(pa.array(offsets), pa.array(values)),
            "signature": pa.nulls(len(docs), pa.list_(pa.uint32())),
        },
        schema=SETS_FILE_SCHEMA,
    )
    write_table(unit_file(work.anchor_sets, unit), sets)
    n_anchors = read_table(unit_file(work.docs, unit))[N_ANCHORS].to_numpy().astype(np.int64)
    a = n_anchors[idx - unit.start]
    need = anchors_needed(a, cfg.containment.threshold, cfg.containment.min_shared_anchors)
    mask = in_prefix(idx, key, rows[DF].to_numpy(), a, need)
    prefix = pa.table({KEY: key[mask], IDX: idx[mask]}, schema=PREFIX_SCHEMA)
    write_partitioned(unit_file(work.prefix, unit), prefix, partition_of(key[mask], parts), parts)
    return prefix.num_rows


def _candidates_task(p: int, units: list[Unit], cfg: DedupConfig, parts: int, work: Work):
    near = np.empty((0, 2), np.int64)
    if cfg.near:
        rows = read_partition([unit_file(work.bands, u) for u in units], p, BANDS_SCHEMA)
        near = near_candidates(rows, _excluded(work), cfg.max_bucket_pairs)
    _write_pairs(unit_file(work.near_pairs, p), near, parts)
    shared = read_table(unit_file(work.shared, p))
    prefix = read_partition([unit_file(work.prefix, u) for u in units], p, PREFIX_SCHEMA)
    is_prefix = np.isin(_row_codes(shared), _row_codes(prefix))
    partial = prefix_candidates(shared, is_prefix, cfg.max_bucket_pairs)
    _write_pairs(unit_file(work.partial_pairs, p), partial, parts)
    return {"near": len(near), "partial": len(partial)}


def _row_codes(rows: pa.Table) -> np.ndarray:
    """Each (key, idx) row as one uint64 (indices < 2^32)."""
    return pair_codes(np.stack([rows[KEY].to_numpy(), rows[IDX].to_numpy()], axis=1))


def _write_pairs(path: Path, pairs: np.ndarray, parts: int) -> None:
    table = pa.table({"a": pairs[:, 0], "b": pairs[:, 1]}, schema=PAIRS_SCHEMA)
    write_partitioned(path, table, partition_of(pair_codes(pairs), parts), parts)


def _pairs_task(v: int, units: list[Unit], cfg: DedupConfig, work: Work) -> dict:
    """Per pair partition: each candidate pair once, partial ones with enough shared anchors
    (counted on the two documents' anchor sets); and the documents they name, by unit."""
    found = read_partition(Work.files(work.near_pairs), v, PAIRS_SCHEMA)
    near, _ = unique_pairs(_pairs_of(found))
    found = read_partition(Work.files(work.partial_pairs), v, PAIRS_SCHEMA)
    partial, _ = unique_pairs(_pairs_of(found))
    store = DocStore(work.docs, work.sets, units)
    shared = shared_anchor_counts(partial, DocStore(work.docs, work.anchor_sets, units))
    containment = cfg.containment
    partial = enough_anchors(
        partial, shared, store, containment.threshold, containment.min_shared_anchors
    )
    for directory, pairs in ((work.near_candidates, near), (work.partial_candidates, partial)):
        write_table(unit_file(directory, v), pa.table({"a": pairs[:, 0], "b": pairs[:, 1]}))
    idx = np.unique(np.concatenate([near.ravel(), partial.ravel()]))
    owner = np.searchsorted(store.starts, idx, side="right") - 1
    needed = pa.table({IDX: idx}, schema=NEEDED_SCHEMA)
    write_partitioned(unit_file(work.needed, v), needed, owner, len(units))
    return {"near": len(near), "partial": len(partial)}


def _sets_task(unit: Unit, cfg: DedupConfig, work: Work) -> int:
    """Shingle sets of this unit's candidate documents (those some pair names)."""
    needed = read_partition(Work.files(work.needed), unit.number, NEEDED_SCHEMA)
    idx = np.unique(needed[IDX].to_numpy())
    texts = read_unit(unit, [S.TEXT])[S.TEXT].take(pa.array(idx - unit.start)).to_pylist()
    write_table(unit_file(work.sets, unit), document_sets(texts, idx, cfg))
    return len(idx)


# --- 4. verify -----------------------------------------------------------------------------


def _verify_task(v: int, units: list[Unit], cfg: DedupConfig, work: Work):
    store = DocStore(work.docs, work.sets, units)
    near = _pairs_of(read_table(unit_file(work.near_candidates, v)))
    edges = verify_near(near, store, cfg.threshold, cfg.verify)
    # Parquet: the distributed components read the edges with Ray Data.
    work.edges.mkdir(parents=True, exist_ok=True)
    pq.write_table(edges, work.edges / f"{v:05d}.parquet")
    partial = _pairs_of(read_table(unit_file(work.partial_candidates, v)))
    partial = verify_partial(partial, store, cfg.containment.threshold)
    write_table(unit_file(work.partial, v), partial)
    return {"edges": edges.num_rows, "partial": partial.num_rows}


def _pairs_of(table: pa.Table) -> np.ndarray:
    """A pairs table's (a, b) columns as a (k, 2) array."""
    return np.stack([table["a"].to_numpy(), table["b"].to_numpy()], axis=1)


# --- 5. components ---------------------------------------------------------------------------


def _components(work: Work, cfg: DedupConfig, edges: int, parts: int) -> dict:
    """Components of the verified edges, written to work.components partitioned by component."""
    if edges <= cfg.local_components_max_edges:
        _wave(_local_components_task, [(work, parts)])
        return {"components": "local", "components_rounds": 0}
    rounds = _distributed_components(work, cfg, parts)
    return {"components": "distributed", "components_rounds": rounds}


def _local_components_task(work: Work, parts: int) -> None:
    edges = pq.read_table(work.edges, schema=EDGES_SCHEMA)
    nodes, component = local_components(edges[SRC].to_numpy(), edges[DST].to_numpy())
    table = pa.table([nodes, component], schema=COMPONENTS_SCHEMA)
    write_partitioned(
        work.components / "00000.arrow",
        table,
        partition_of(component.astype(np.uint64), parts),
        parts,
    )


def _distributed_components(work: Work, cfg: DedupConfig, parts: int) -> int:
    """Large-star/small-star rounds on Ray Data (string node ids), for graphs too large for
    one task; each result block is written back as integer (idx, component) partitions by the
    task that holds it."""
    edges = ray.data.read_parquet(str(work.edges), schema=EDGES_SCHEMA)
    edges = edges.map_batches(_as_string_edges, batch_format="pyarrow")
    result = connected_components(edges, work.root / "cc", cfg.max_cc_iterations, parts)
    written = result.dataset.map_batches(
        _write_components_block,
        batch_format="pyarrow",
        batch_size=None,
        fn_kwargs={"directory": str(work.components), "parts": parts},
    )
    written.materialize()
    return result.rounds


def _write_components_block(block: pa.Table, directory: str, parts: int) -> pa.Table:
    component = block["component"].cast(pa.int64()).to_numpy()
    table = pa.table([block["node"].cast(pa.int64()), component], schema=COMPONENTS_SCHEMA)
    path = Path(directory) / f"{uuid.uuid4().hex}.arrow"
    write_partitioned(path, table, partition_of(component.astype(np.uint64), parts), parts)
    return pa.table({"rows": [block.num_rows]})


def _as_string_edges(batch: pa.Table) -> pa.Table:
    return pa.table({"src": batch[SRC].cast(pa.string()), "dst": batch[DST].cast(pa.string())})


# --- 6. clusters ---------------------------------------------------------------------------


def _clusters_task(
    c: int, units: list[Unit], cfg: DedupConfig, parts: int, work: Work, clusters_dir: Path
):
    components = read_partition(Work.files(work.components), c, COMPONENTS_SCHEMA)
    members = near_clusters(components, DocStore(work.docs, work.sets, units), cfg.keep)
    write_table(unit_file(work.near, c), members)
    _write_clusters(clusters_dir / f"near-{c:05d}.parquet", cluster_rows(members, "near"))
    return _survivor_sizes(members)


# --- 7. decide -----------------------------------------------------------------------------


def _decide_task(unit: Unit, units: list[Unit], cfg: DedupConfig, work: Work, sink: AccountingSink):
    docs = read_unit(unit, [f.name for f in S.DOCS_SCHEMA])
    docs = docs.append_column(IDX, pa.array(np.arange(unit.start, unit.stop), pa.int64()))
    store = DocStore(work.docs, work.sets, units)
    near = work.table(work.near, MEMBERS_SCHEMA)
    # This unit's parts only, before their containers are looked up; decide() itself picks
    # this unit's rows of the exact and near members.
    partial = work.table(work.partial, PARTIAL_SCHEMA)
    part = partial[PART].to_numpy()
    partial = partial.filter(pa.array((part >= unit.start) & (part < unit.stop)))
    partial = redirect_to_survivors(partial, near, lambda idx: _names(store, idx))
    exact = work.table(work.exact, MEMBERS_SCHEMA)
    rows = decide(docs, exact, near, partial, cfg.containment.action)
    written: SinkResult = sink.write_part([rows], f"part-{unit.number:05d}.parquet")
    kept = rows.filter(pa.compute.is_null(rows[S.DROP_REASON]))
    flagged = kept.num_rows - kept[S.PARTIAL_DUP_OF].null_count
    return {"written": written, "flagged": flagged}


def _names(store: DocStore, idx: np.ndarray) -> pa.Array:
    """doc_ids of documents `idx` (any order)."""
    idx = np.asarray(idx, dtype=np.int64)
    distinct, inverse = np.unique(idx, return_inverse=True)
    names = store.columns(distinct, [S.DOC_ID])[S.DOC_ID].combine_chunks()
    return names.take(pa.array(inverse.ravel()))
