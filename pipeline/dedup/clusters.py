"""Pure decisions of the dedup stage: who survives, which candidate pairs are real, and what
each document becomes. Arrow tables in, Arrow tables out; no Ray here.

    survivor_index(["b", "a"], [10, 10], "longest")        # -> 1 (tie on size: smaller id)
    jaccard(np.array([1, 2, 3], np.uint32), np.array([2, 3, 4], np.uint32))   # -> 0.5
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from pipeline import schema as S

KEEP_RULES = ("longest", "smallest_id")
EXACT_DUPLICATE = "exact_duplicate"
NEAR_DUPLICATE = "near_duplicate"
PARTIAL_DUPLICATE = "partial_duplicate"

SHINGLES = "shingles"  # sorted unique uint32 shingle hashes of a document
SIGNATURE = "signature"  # its MinHash signature
DUPLICATE_OF = "duplicate_of"
GROUP_SIZE = "group_size"

# Output of the exact step: documents plus who they duplicate, plus the drop columns.
EXACT_SCHEMA = S.with_drop_columns(
    pa.schema(
        [*S.DOCS_SCHEMA, pa.field(DUPLICATE_OF, pa.string()), pa.field(GROUP_SIZE, pa.int32())]
    )
)
EDGES_SCHEMA = pa.schema(
    [
        pa.field("src", pa.string()),
        pa.field("dst", pa.string()),
        pa.field(S.SIMILARITY, pa.float32()),
    ]
)
# A directed "src is mostly contained in dst" relation.
PARTIAL_SCHEMA = pa.schema(
    [
        pa.field(S.DOC_ID, pa.string()),
        pa.field(S.PARTIAL_DUP_OF, pa.string()),
        pa.field(S.CONTAINMENT, pa.float32()),
    ]
)


def survivor_index(doc_ids: list[str], n_bytes: list[int], rule: str) -> int:
    """The member that stays: the longest (ties: smallest id), or the smallest id."""
    if rule == "longest":
        return min(range(len(doc_ids)), key=lambda i: (-n_bytes[i], doc_ids[i]))
    if rule == "smallest_id":
        return min(range(len(doc_ids)), key=lambda i: doc_ids[i])
    raise ValueError(f"unknown keep rule {rule!r}; known: {KEEP_RULES}")


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


def mark_exact_group(group: pa.Table, rule: str) -> pa.Table:
    """Rows sharing one text digest: the survivor stays, the others are exact duplicates."""
    ids = group[S.DOC_ID].to_pylist()
    keep = survivor_index(ids, group[S.N_BYTES].to_pylist(), rule)
    survivor = ids[keep]
    n = len(ids)
    dup_of = [None if i == keep else survivor for i in range(n)]
    columns = {f.name: group[f.name] for f in S.DOCS_SCHEMA}
    columns[DUPLICATE_OF] = pa.array(dup_of, pa.string())
    columns[GROUP_SIZE] = pa.array([n] * n, pa.int32())
    columns[S.DROP_REASON] = pa.array([None if d is None else EXACT_DUPLICATE for d in dup_of])
    columns[S.DROP_DETAIL] = pa.array([None if d is None else f"same text as {d}" for d in dup_of])
    columns[S.SNIPPET] = pa.nulls(n, pa.string())
    return pa.table(columns, schema=EXACT_SCHEMA)


def exact_cluster_rows(rows: pa.Table) -> pa.Table:
    """Clusters-table rows for exact groups (EXACT_SCHEMA rows with group_size > 1)."""
    members = rows.filter(pa.compute.greater(rows[GROUP_SIZE], 1)).to_pylist()
    out = []
    for r in members:
        survivor = r[DUPLICATE_OF] or r[S.DOC_ID]
        out.append(
            {
                S.CLUSTER_ID: f"exact:{survivor}",
                S.KIND: "exact",
                S.DOC_ID: r[S.DOC_ID],
                S.SURVIVOR: survivor,
                S.IS_SURVIVOR: r[DUPLICATE_OF] is None,
                S.SIMILARITY: 1.0,
                S.CLUSTER_SIZE: r[GROUP_SIZE],
                S.N_BYTES: r[S.N_BYTES],
            }
        )
    return pa.Table.from_pylist(out, schema=S.CLUSTERS_SCHEMA)


def verify_pairs(group: pa.Table, pairs: np.ndarray, threshold: float, verify: str) -> pa.Table:
    """Keep the candidate pairs (row indices into `group`) whose similarity >= threshold."""
    ids = group[S.DOC_ID].to_pylist()
    src, dst, sims = [], [], []
    if verify == "jaccard":
        sets = [np.asarray(s, dtype=np.uint32) for s in group[SHINGLES].to_pylist()]

        def similarity(i: int, j: int) -> float:
            return jaccard(sets[i], sets[j])
    elif verify == "estimate":
        sigs = np.asarray(group[SIGNATURE].to_pylist(), dtype=np.uint32)

        def similarity(i: int, j: int) -> float:
            return float(np.mean(sigs[i] == sigs[j]))
    else:
        raise ValueError(f"unknown verify mode {verify!r}; known: jaccard, estimate")
    for i, j in pairs:
        sim = similarity(int(i), int(j))
        if sim >= threshold:
            a, b = sorted((ids[i], ids[j]))
            src.append(a)
            dst.append(b)
            sims.append(sim)
    return pa.table({"src": src, "dst": dst, S.SIMILARITY: sims}, schema=EDGES_SCHEMA)


def near_cluster_rows(group: pa.Table, rule: str) -> pa.Table:
    """One component (doc_id, n_bytes, shingles rows): clusters-table rows, Jaccard to survivor."""
    ids = group[S.DOC_ID].to_pylist()
    sizes = group[S.N_BYTES].to_pylist()
    sets = [np.asarray(s, dtype=np.uint32) for s in group[SHINGLES].to_pylist()]
    keep = survivor_index(ids, sizes, rule)
    n = len(ids)
    return pa.table(
        {
            S.CLUSTER_ID: [f"near:{ids[keep]}"] * n,
            S.KIND: ["near"] * n,
            S.DOC_ID: ids,
            S.SURVIVOR: [ids[keep]] * n,
            S.IS_SURVIVOR: [i == keep for i in range(n)],
            S.SIMILARITY: [jaccard(sets[i], sets[keep]) for i in range(n)],
            S.CLUSTER_SIZE: [n] * n,
            S.N_BYTES: sizes,
        },
        schema=S.CLUSTERS_SCHEMA,
    )


def decide(doc: pa.Table, near: pa.Table, partial: pa.Table, partial_action: str) -> pa.Table:
    """The dedup output row (DEDUP_SCHEMA + drop columns) of one document.

    `doc` is its EXACT_SCHEMA row; `near` its clusters row, if any; `partial` its
    containment rows, if any (the best container wins).
    """
    row = doc.to_pylist()[0]
    out = {f.name: row.get(f.name) for f in S.DOCS_SCHEMA}
    out[S.CLUSTER_ID] = None
    out[S.CLUSTER_SIZE] = 1
    out[S.PARTIAL_DUP_OF] = None
    out[S.CONTAINMENT] = None
    for column in S.DROP_COLUMNS:
        out[column] = row.get(column)
    if row[GROUP_SIZE] and row[GROUP_SIZE] > 1:
        out[S.CLUSTER_ID] = f"exact:{row[DUPLICATE_OF] or row[S.DOC_ID]}"
        out[S.CLUSTER_SIZE] = row[GROUP_SIZE]
    if near.num_rows and out[S.DROP_REASON] is None:
        cluster = near.to_pylist()[0]
        out[S.CLUSTER_ID] = cluster[S.CLUSTER_ID]
        out[S.CLUSTER_SIZE] = cluster[S.CLUSTER_SIZE]
        if not cluster[S.IS_SURVIVOR]:
            out[S.DROP_REASON] = NEAR_DUPLICATE
            out[S.DROP_DETAIL] = (
                f"near-duplicate of {cluster[S.SURVIVOR]} (jaccard {cluster[S.SIMILARITY]:.2f})"
            )
    if partial.num_rows and out[S.DROP_REASON] is None:
        best = max(partial.to_pylist(), key=lambda r: (r[S.CONTAINMENT], r[S.PARTIAL_DUP_OF]))
        out[S.PARTIAL_DUP_OF] = best[S.PARTIAL_DUP_OF]
        out[S.CONTAINMENT] = best[S.CONTAINMENT]
        if partial_action == "remove":
            out[S.DROP_REASON] = PARTIAL_DUPLICATE
            out[S.DROP_DETAIL] = f"{best[S.CONTAINMENT]:.0%} contained in {best[S.PARTIAL_DUP_OF]}"
    return pa.Table.from_pylist([out], schema=S.with_drop_columns(S.DEDUP_SCHEMA))
