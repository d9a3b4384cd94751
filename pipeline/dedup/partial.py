"""Partial duplicates on Ray Data: window buckets -> candidate pairs -> containment.

Candidate (part, whole) pairs come from window-level LSH buckets; two cogroups attach the
part's and the whole's shingle sets, containment is measured exactly, and a container that
is itself a near duplicate is replaced by its cluster's survivor.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline import schema as S
from pipeline.config import DedupConfig
from pipeline.dedup import clusters as C
from pipeline.dedup.containment import containment_candidates
from pipeline.dedup.features import (
    COARSE,
    FEATURES_SCHEMA,
    N_SHINGLES,
    N_WINDOW_KEYS,
    WINDOW_KEYS,
    bucket_runs,
    coarse_groups,
    explode,
)
from pipeline.ray_ops import cogroup, sum_column

PAIR_SCHEMA = pa.schema([pa.field("part", pa.string()), pa.field("whole", pa.string())])
PART_SCHEMA = pa.schema(  # a candidate pair with the part's shingles attached
    [
        pa.field("part", pa.string()),
        pa.field("whole", pa.string()),
        pa.field(C.SHINGLES, pa.large_list(pa.uint32())),
    ]
)


def partial_step(features, near_clusters, cfg: DedupConfig, parts: int, work: Path):
    n_groups = coarse_groups(sum_column(work / "features", N_WINDOW_KEYS))
    windows = features.map_batches(
        explode,
        batch_format="pyarrow",
        fn_kwargs={"keys": WINDOW_KEYS, "keep": [], "n_groups": n_groups},
    )
    pairs = windows.groupby(COARSE, num_partitions=parts).map_groups(
        _window_pairs, batch_format="pyarrow", fn_kwargs={"cap": cfg.max_bucket_pairs}
    )
    shingles = features.select_columns([S.DOC_ID, C.SHINGLES])
    shingles_schema = pa.schema(
        [FEATURES_SCHEMA.field(S.DOC_ID), FEATURES_SCHEMA.field(C.SHINGLES)]
    )
    with_part = cogroup(
        {"pair": (pairs, "part", PAIR_SCHEMA), "doc": (shingles, S.DOC_ID, shingles_schema)},
        _attach_part,
        parts,
    )
    measured = cogroup(
        {"pair": (with_part, "whole", PART_SCHEMA), "doc": (shingles, S.DOC_ID, shingles_schema)},
        _measure_containment,
        parts,
        fn_kwargs={"threshold": cfg.containment.threshold},
    )
    return cogroup(
        {
            "partial": (measured, S.PARTIAL_DUP_OF, C.PARTIAL_SCHEMA),
            "near": (near_clusters, S.DOC_ID, S.CLUSTERS_SCHEMA),
        },
        _redirect_to_survivor,
        parts,
    )


def _window_pairs(group: pa.Table, cap: int) -> pa.Table:
    group, rows, starts, sizes = bucket_runs(group, [N_SHINGLES, S.DOC_ID])
    shared = group.take(rows)
    ids = shared[S.DOC_ID].to_pylist()
    n_shingles = shared[N_SHINGLES].to_pylist()
    pairs = set()
    for start, size in zip(starts, sizes, strict=True):
        run = slice(start, start + size)
        pairs.update(containment_candidates(ids[run], n_shingles[run], cap))
    ordered = sorted(pairs)
    return pa.table(
        {"part": [p for p, _ in ordered], "whole": [w for _, w in ordered]}, schema=PAIR_SCHEMA
    )


def _attach_part(parts: dict[str, pa.Table]) -> pa.Table:
    pairs, doc = parts["pair"], parts["doc"]
    if pairs.num_rows == 0 or doc.num_rows == 0:
        return PART_SCHEMA.empty_table()
    wholes = sorted(set(pairs["whole"].to_pylist()))
    part = pairs["part"][0].as_py()
    shingles = doc[C.SHINGLES][0].as_py()
    return pa.table(
        {"part": [part] * len(wholes), "whole": wholes, C.SHINGLES: [shingles] * len(wholes)},
        schema=PART_SCHEMA,
    )


def _measure_containment(parts: dict[str, pa.Table], threshold: float) -> pa.Table:
    pairs, doc = parts["pair"], parts["doc"]
    out = {S.DOC_ID: [], S.PARTIAL_DUP_OF: [], S.CONTAINMENT: []}
    if pairs.num_rows and doc.num_rows:
        whole = np.asarray(doc[C.SHINGLES][0].as_py(), dtype=np.uint32)
        for row in pairs.to_pylist():
            share = C.containment(np.asarray(row[C.SHINGLES], dtype=np.uint32), whole)
            if share >= threshold:
                out[S.DOC_ID].append(row["part"])
                out[S.PARTIAL_DUP_OF].append(row["whole"])
                out[S.CONTAINMENT].append(share)
    return pa.table(out, schema=C.PARTIAL_SCHEMA)


def _redirect_to_survivor(parts: dict[str, pa.Table]) -> pa.Table:
    """A container that is itself a near-duplicate is replaced by its cluster's survivor."""
    partial, near = parts["partial"], parts["near"]
    if partial.num_rows == 0 or near.num_rows == 0:
        return partial
    survivor = near[S.SURVIVOR][0].as_py()
    keep = pc.not_equal(partial[S.DOC_ID], survivor)
    return partial.filter(keep).set_column(
        1, S.PARTIAL_DUP_OF, pa.array([survivor] * pc.sum(keep).as_py(), pa.string())
    )
