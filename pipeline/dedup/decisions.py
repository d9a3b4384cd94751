"""Pure decisions of the dedup stage: which candidate pairs are real, who survives a cluster,
and what each document becomes. Arrow and numpy in and out; documents are integer indices,
their ids, sizes and shingle sets come from a DocStore; no Ray here.

    edges = verify_near(pairs, store, threshold=0.6, verify="jaccard")    # src, dst, similarity
    shared = shared_anchor_counts(pairs, anchor_store)     # anchor_store: sets of anchors
    pairs = enough_anchors(pairs, shared, store, threshold=0.5, min_shared=2)
    partial = verify_partial(pairs, store, threshold=0.5)
    members = near_clusters(components, store, rule="longest")            # one row per member
    rows = decide(docs, exact, near, partial, action="flag")             # DEDUP_SCHEMA + drops
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline import schema as S
from pipeline.dedup.candidates import GROUP_SIZE, SURVIVOR, anchors_needed, survivor_order
from pipeline.dedup.workfiles import IDX, N_ANCHORS, SIGNATURE, DocStore
from pipeline.similarity.sets import intersection_sizes, pair_containment, pair_jaccard

EXACT_DUPLICATE = "exact_duplicate"
NEAR_DUPLICATE = "near_duplicate"
PARTIAL_DUPLICATE = "partial_duplicate"
SURVIVOR_ID = f"{SURVIVOR}_id"
SRC, DST, PART, WHOLE, COMPONENT = "src", "dst", "part", "whole", "component"

EDGES_SCHEMA = pa.schema(
    [pa.field(SRC, pa.int64()), pa.field(DST, pa.int64()), pa.field(S.SIMILARITY, pa.float32())]
)
PARTIAL_SCHEMA = pa.schema(
    [pa.field(PART, pa.int64()), pa.field(WHOLE, pa.int64()), pa.field(S.CONTAINMENT, pa.float32())]
)
COMPONENTS_SCHEMA = pa.schema([pa.field(IDX, pa.int64()), pa.field(COMPONENT, pa.int64())])
# One row per member of an exact group or near cluster (the survivor included).
MEMBERS_SCHEMA = pa.schema(
    [
        pa.field(IDX, pa.int64()),
        pa.field(S.DOC_ID, pa.string()),
        pa.field(S.N_BYTES, pa.int64()),
        pa.field(SURVIVOR, pa.int64()),
        pa.field(SURVIVOR_ID, pa.string()),
        pa.field(S.SIMILARITY, pa.float32()),
        pa.field(GROUP_SIZE, pa.int32()),
    ]
)


def _local(pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct documents of `pairs` (sorted) and the pairs as positions among them."""
    docs = np.unique(pairs)
    return docs, np.searchsorted(docs, pairs)


def verify_near(pairs: np.ndarray, store: DocStore, threshold: float, verify: str) -> pa.Table:
    """Candidate pairs whose similarity reaches `threshold`: exact Jaccard of the shingle sets
    ("jaccard") or the MinHash estimate ("estimate")."""
    if len(pairs) == 0:
        return EDGES_SCHEMA.empty_table()
    docs, local = _local(pairs)
    if verify == "jaccard":
        similarity = pair_jaccard(*store.gather(docs), local)
    elif verify == "estimate":
        signatures = store.sets(docs, [SIGNATURE])[SIGNATURE].combine_chunks()
        sig = signatures.values.to_numpy().reshape(len(docs), -1)
        similarity = (sig[local[:, 0]] == sig[local[:, 1]]).mean(axis=1)
    else:
        raise ValueError(f"unknown verify mode {verify!r}; known: jaccard, estimate")
    keep = similarity >= threshold
    return pa.table(
        [pairs[keep, 0], pairs[keep, 1], similarity[keep].astype(np.float32)], schema=EDGES_SCHEMA
    )


def shared_anchor_counts(pairs: np.ndarray, anchor_store: DocStore) -> np.ndarray:
    """How many anchors each pair shares, from a store whose sets are the documents' shared
    anchors (the prefix step's anchor sets)."""
    if len(pairs) == 0:
        return np.empty(0, np.int64)
    docs, local = _local(pairs)
    return intersection_sizes(*anchor_store.gather(docs), local)


def enough_anchors(
    pairs: np.ndarray, shared: np.ndarray, store: DocStore, threshold: float, min_shared: int
) -> np.ndarray:
    """The (part, whole) pairs that share as many anchors as a pair at containment
    `threshold` would (anchors_needed, by the part's anchor count)."""
    if len(pairs) == 0:
        return pairs
    docs, local = _local(pairs)
    n_anchors = store.columns(docs, [N_ANCHORS])[N_ANCHORS].to_numpy()
    return pairs[shared >= anchors_needed(n_anchors, threshold, min_shared)[local[:, 0]]]


def verify_partial(pairs: np.ndarray, store: DocStore, threshold: float) -> pa.Table:
    """(part, whole) pairs whose containment, the share of the part's shingles found in the
    whole, reaches `threshold`."""
    if len(pairs) == 0:
        return PARTIAL_SCHEMA.empty_table()
    docs, local = _local(pairs)
    share = pair_containment(*store.gather(docs), local)
    keep = share >= threshold
    return pa.table(
        [pairs[keep, 0], pairs[keep, 1], share[keep].astype(np.float32)], schema=PARTIAL_SCHEMA
    )


def near_clusters(components: pa.Table, store: DocStore, rule: str) -> pa.Table:
    """Members of whole components (idx, component): the survivor by `rule`, and each
    member's exact Jaccard with it."""
    if components.num_rows == 0:
        return MEMBERS_SCHEMA.empty_table()
    components = components.sort_by(IDX)
    docs = components[IDX].to_numpy()
    info = store.columns(docs, [S.DOC_ID, S.N_BYTES])
    table = pa.table(
        {
            IDX: docs,
            COMPONENT: components[COMPONENT],
            S.DOC_ID: info[S.DOC_ID],
            S.N_BYTES: info[S.N_BYTES],
            "position": np.arange(len(docs)),
        }
    ).sort_by([(COMPONENT, "ascending"), *survivor_order(rule)])
    component = table[COMPONENT].to_numpy()
    new_run = np.ones(len(component), dtype=bool)
    new_run[1:] = component[1:] != component[:-1]
    starts = np.flatnonzero(new_run)
    sizes = np.diff(np.append(starts, len(component)))
    first = np.repeat(starts, sizes)
    position = table["position"].to_numpy()
    similarity = pair_jaccard(*store.gather(docs), np.stack([position, position[first]], axis=1))
    return pa.table(
        {
            IDX: table[IDX],
            S.DOC_ID: table[S.DOC_ID],
            S.N_BYTES: table[S.N_BYTES],
            SURVIVOR: table[IDX].take(first),
            SURVIVOR_ID: table[S.DOC_ID].take(first),
            S.SIMILARITY: similarity.astype(np.float32),
            GROUP_SIZE: np.repeat(sizes, sizes).astype(np.int32),
        },
        schema=MEMBERS_SCHEMA,
    )


def cluster_rows(members: pa.Table, kind: str) -> pa.Table:
    """The clusters table's rows (CLUSTERS_SCHEMA) of exact groups or near clusters."""
    survivor_id = members[SURVIVOR_ID]
    return pa.table(
        {
            S.CLUSTER_ID: pc.binary_join_element_wise(f"{kind}:", survivor_id, ""),
            S.KIND: pa.array([kind] * members.num_rows, pa.string()),
            S.DOC_ID: members[S.DOC_ID],
            S.SURVIVOR: survivor_id,
            S.IS_SURVIVOR: pc.equal(members[IDX], members[SURVIVOR]),
            S.SIMILARITY: members[S.SIMILARITY],
            S.CLUSTER_SIZE: members[GROUP_SIZE],
            S.N_BYTES: members[S.N_BYTES],
        },
        schema=S.CLUSTERS_SCHEMA,
    )


def redirect_to_survivors(partial: pa.Table, near: pa.Table, doc_ids) -> pa.Table:
    """A container that is a near duplicate is replaced by its cluster's survivor (a part that
    is that survivor itself is no partial duplicate); then each part keeps its best container
    (highest containment, then largest id). `doc_ids(idx)` names documents."""
    if partial.num_rows == 0:
        return partial.append_column(S.PARTIAL_DUP_OF, pa.array([], pa.string()))
    whole = partial[WHOLE].to_numpy()
    if near.num_rows:
        members = near[IDX].to_numpy()
        order = np.argsort(members)
        at = np.clip(np.searchsorted(members, whole, sorter=order), 0, len(members) - 1)
        found = members[order[at]] == whole
        whole = np.where(found, near[SURVIVOR].to_numpy()[order[at]], whole)
    part = partial[PART].to_numpy()
    share = partial[S.CONTAINMENT].to_numpy()
    keep = part != whole
    part, whole, share = part[keep], whole[keep], share[keep]
    names = doc_ids(whole)
    table = pa.table(
        {PART: part, WHOLE: whole, S.CONTAINMENT: share, S.PARTIAL_DUP_OF: names}
    ).sort_by(
        [(PART, "ascending"), (S.CONTAINMENT, "descending"), (S.PARTIAL_DUP_OF, "descending")]
    )
    first = np.ones(table.num_rows, dtype=bool)
    part_sorted = table[PART].to_numpy()
    first[1:] = part_sorted[1:] != part_sorted[:-1]
    return table.filter(pa.array(first))


def decide(
    docs: pa.Table, exact: pa.Table, near: pa.Table, partial: pa.Table, action: str
) -> pa.Table:
    """The dedup output rows (DEDUP_SCHEMA + drop columns) of `docs` (DOCS_SCHEMA + idx).

    `exact` and `near` hold MEMBERS_SCHEMA rows of these documents, `partial` their best
    containers (redirect_to_survivors). An exact duplicate is dropped first; a near duplicate
    of a survivor next; a partial duplicate of a kept document is flagged or removed.
    """
    n = docs.num_rows
    idx = docs[IDX].to_numpy()
    cluster_id = np.full(n, None, dtype=object)
    cluster_size = np.ones(n, np.int32)
    reason = np.full(n, None, dtype=object)
    detail = np.full(n, None, dtype=object)
    for kind, members in (("exact", exact), ("near", near)):
        rows = _rows_of(idx, members)
        free = reason[rows.position] == None  # noqa: E711 (elementwise over an object array)
        at = rows.position[free]
        survivor_id = np.asarray(rows.table[SURVIVOR_ID].to_pylist(), dtype=object)[free]
        cluster_id[at] = [f"{kind}:{s}" for s in survivor_id]
        cluster_size[at] = rows.table[GROUP_SIZE].to_numpy()[free]
        dropped = (rows.table[IDX].to_numpy() != rows.table[SURVIVOR].to_numpy())[free]
        similarity = rows.table[S.SIMILARITY].to_numpy()[free]
        reason[at[dropped]] = EXACT_DUPLICATE if kind == "exact" else NEAR_DUPLICATE
        detail[at[dropped]] = [
            f"same text as {s}" if kind == "exact" else f"near-duplicate of {s} (jaccard {j:.2f})"
            for s, j in zip(survivor_id[dropped], similarity[dropped], strict=True)
        ]
    partial_of = np.full(n, None, dtype=object)
    share = np.full(n, np.nan, np.float32)
    rows = _rows_of(idx, partial.rename_columns([IDX, *partial.column_names[1:]]))
    free = reason[rows.position] == None  # noqa: E711
    at = rows.position[free]
    containers = np.asarray(rows.table[S.PARTIAL_DUP_OF].to_pylist(), dtype=object)[free]
    shares = rows.table[S.CONTAINMENT].to_numpy()[free]
    partial_of[at], share[at] = containers, shares
    if action == "remove":
        reason[at] = PARTIAL_DUPLICATE
        detail[at] = [f"{c:.0%} contained in {w}" for c, w in zip(shares, containers, strict=True)]
    columns = {f.name: docs[f.name] for f in S.DOCS_SCHEMA}
    columns[S.CLUSTER_ID] = pa.array(cluster_id.tolist(), pa.string())
    columns[S.CLUSTER_SIZE] = cluster_size
    columns[S.PARTIAL_DUP_OF] = pa.array(partial_of.tolist(), pa.string())
    columns[S.CONTAINMENT] = pa.array(share, pa.float32(), mask=np.isnan(share))
    columns[S.DROP_REASON] = pa.array(reason.tolist(), pa.string())
    columns[S.DROP_DETAIL] = pa.array(detail.tolist(), pa.string())
    columns[S.SNIPPET] = pa.nulls(n, pa.string())
    return pa.table(columns, schema=S.with_drop_columns(S.DEDUP_SCHEMA))


class _Rows:
    def __init__(self, position: np.ndarray, table: pa.Table):
        self.position, self.table = position, table


def _rows_of(idx: np.ndarray, table: pa.Table) -> _Rows:
    """The rows of `table` whose idx is among the (sorted, contiguous) `idx`, and where."""
    if table.num_rows == 0 or len(idx) == 0:
        return _Rows(np.empty(0, np.int64), table.slice(0, 0))
    own = table[IDX].to_numpy()
    inside = (own >= idx[0]) & (own <= idx[-1])
    table = table.filter(pa.array(inside))
    return _Rows(table[IDX].to_numpy() - idx[0], table)
