"""Near duplicates on Ray Data: band buckets -> verified edges -> components -> clusters.

Bucket rows are shuffled by a coarse key (many whole buckets per group, processed with
vectorised sorts); verified edges go to connected components; each component becomes a
cluster with a survivor and every member's Jaccard similarity to it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from pipeline import schema as S
from pipeline.config import DedupConfig
from pipeline.dedup import clusters as C
from pipeline.dedup.components import COMPONENTS_SCHEMA, connected_components
from pipeline.dedup.features import (
    BAND_KEYS,
    COARSE,
    FEATURES_SCHEMA,
    bucket_runs,
    coarse_groups,
    explode,
)
from pipeline.dedup.lsh import _run_pairs as run_pairs
from pipeline.ray_ops import cogroup, count_rows, read_parts, write_parts

MEMBER_SCHEMA = pa.schema(  # a component member with what the survivor rule needs
    [
        pa.field(S.DOC_ID, pa.string()),
        pa.field("component", pa.string()),
        pa.field(S.N_BYTES, pa.int64()),
        pa.field(C.SHINGLES, pa.large_list(pa.uint32())),
    ]
)


def near_step(features, cfg: DedupConfig, parts: int, work: Path, bands: int):
    n_groups = coarse_groups(count_rows(work / "features") * bands)
    buckets = features.map_batches(
        explode,
        batch_format="pyarrow",
        fn_kwargs={"keys": BAND_KEYS, "keep": [C.SHINGLES, C.SIGNATURE], "n_groups": n_groups},
    )
    edges = buckets.groupby(COARSE, num_partitions=parts).map_groups(
        _verify_buckets, batch_format="pyarrow", fn_kwargs={"cfg": cfg}
    )
    write_parts(edges, work / "edges")
    edges = read_parts(work / "edges", C.EDGES_SCHEMA)
    components = connected_components(edges, work / "components", cfg.max_cc_iterations, parts)
    doc_columns = [S.DOC_ID, S.N_BYTES, C.SHINGLES]
    members = cogroup(
        {
            "node": (components.dataset, "node", COMPONENTS_SCHEMA),
            "doc": (
                features.select_columns(doc_columns),
                S.DOC_ID,
                pa.schema([FEATURES_SCHEMA.field(n) for n in doc_columns]),
            ),
        },
        _member,
        parts,
    )
    clusters = members.groupby("component", num_partitions=parts).map_groups(
        _near_cluster, batch_format="pyarrow", fn_kwargs={"rule": cfg.keep}
    )
    write_parts(clusters, work / "clusters_near")
    stats = {
        "verified_edges": count_rows(work / "edges"),
        "components_rounds": components.rounds,
    }
    return read_parts(work / "clusters_near", S.CLUSTERS_SCHEMA), stats


def _verify_buckets(group: pa.Table, cfg: DedupConfig) -> pa.Table:
    group, rows, starts, sizes = bucket_runs(group, [S.DOC_ID])
    pairs = run_pairs(rows, starts, sizes, cfg.max_bucket_pairs)
    if len(pairs) == 0:
        return C.EDGES_SCHEMA.empty_table()
    # Only rows in some pair are converted to Python; a document's rows are deduplicated so
    # a pair found in several bands is verified once.
    ids = group[S.DOC_ID].to_numpy(zero_copy_only=False)
    rows, inverse = np.unique(ids[pairs.ravel()], return_inverse=True)
    first_row = {doc: i for i, doc in reversed(list(enumerate(ids)))}
    subset = group.take([first_row[doc] for doc in rows])
    unique_pairs = np.unique(np.sort(inverse.reshape(-1, 2), axis=1), axis=0)
    unique_pairs = unique_pairs[unique_pairs[:, 0] != unique_pairs[:, 1]]
    return C.verify_pairs(subset, unique_pairs, cfg.threshold, cfg.verify)


def _member(parts: dict[str, pa.Table]) -> pa.Table:
    node, doc = parts["node"], parts["doc"]
    if node.num_rows == 0 or doc.num_rows == 0:
        return MEMBER_SCHEMA.empty_table()
    return pa.table(
        {
            S.DOC_ID: doc[S.DOC_ID].slice(0, 1),
            "component": node["component"].slice(0, 1),
            S.N_BYTES: doc[S.N_BYTES].slice(0, 1),
            C.SHINGLES: doc[C.SHINGLES].slice(0, 1),
        },
        schema=MEMBER_SCHEMA,
    )


def _near_cluster(group: pa.Table, rule: str) -> pa.Table:
    return C.near_cluster_rows(group, rule)
