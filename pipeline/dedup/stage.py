"""The dedup stage on Ray Data: exact, near (MinHash-LSH + components) and partial duplicates.

Steps, each a distributed Ray Data operation over files in <stage>/work/ (nothing is gathered
on the driver; a worker holds one batch, one bucket or one group):

1. exact     group by a digest of the normalised text; all but one survivor are dropped
2. features  per document: shingles, MinHash signature, band keys, window band keys
3. edges     group by band key; candidate pairs verified (exact Jaccard by default)
4. clusters  connected components of the edges; a survivor per component by `dedup.keep`
5. partial   window-LSH candidates, verified by containment (flag or remove)
6. decide    one row per document: kept (with its cluster) or dropped with its reason

Outputs: <stage>/data (kept documents), quarantine/dedup (dropped, with reason and detail),
<stage>/clusters (one row per member of every exact and near cluster).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import ray

from pipeline import schema as S
from pipeline.config import DedupConfig
from pipeline.dedup import clusters as C
from pipeline.dedup.exact import text_digest
from pipeline.dedup.features import FEATURES_SCHEMA, compute_features, resolve_bands
from pipeline.dedup.near import near_step
from pipeline.dedup.partial import partial_step
from pipeline.io.sink import AccountingSink
from pipeline.ray_ops import (
    cogroup,
    count_non_null,
    count_rows,
    read_parts,
    shuffle_partitions,
    sum_column,
    write_parts,
)
from pipeline.stage import DOCS, RunContext, Stage
from pipeline.stats import StageStats, StepTimer

DIGEST = "digest"


class DedupStage(Stage):
    name = "dedup"
    output_schema = S.DEDUP_SCHEMA
    produces = DOCS

    def settings(self):
        return self.config.dedup

    def run(self, ctx: RunContext) -> StageStats:
        cfg = self.config.dedup
        source_dir = ctx.input_dir
        work = ctx.stage_dir(self.name) / "work"
        shutil.rmtree(work, ignore_errors=True)
        parts = shuffle_partitions(cfg.shuffle_partitions)
        bands, rows = resolve_bands(cfg)
        extra: dict = {"bands": bands, "rows": rows, "threshold": cfg.threshold}

        steps = StepTimer(self.name)
        docs = read_parts(source_dir, S.DOCS_SCHEMA)
        with steps("exact"):
            write_parts(_exact_step(docs, cfg, parts), work / "exact")
        exact = read_parts(work / "exact", C.EXACT_SCHEMA)

        near_clusters = ray.data.from_arrow(S.CLUSTERS_SCHEMA.empty_table())
        partial = ray.data.from_arrow(C.PARTIAL_SCHEMA.empty_table())
        if cfg.near or cfg.containment.enabled:
            with steps("features"):
                features = exact.map_batches(
                    compute_features,
                    batch_size=cfg.batch_rows,
                    batch_format="pyarrow",
                    fn_kwargs={"cfg": cfg, "bands": bands, "rows": rows},
                )
                write_parts(features, work / "features")
            features = read_parts(work / "features", FEATURES_SCHEMA)
        if cfg.near:
            with steps("near"):
                near_clusters, near_stats = near_step(features, cfg, parts, work, bands)
            extra.update(near_stats)
        if cfg.containment.enabled:
            with steps("partial"):
                write_parts(
                    partial_step(features, near_clusters, cfg, parts, work), work / "partial"
                )
            partial = read_parts(work / "partial", C.PARTIAL_SCHEMA)
            extra["partial_pairs"] = count_rows(work / "partial")

        clusters_dir = ctx.stage_dir(self.name) / "clusters"
        with steps("clusters table"):
            exact_clusters = exact.map_batches(C.exact_cluster_rows, batch_format="pyarrow")
            write_parts(exact_clusters.union(near_clusters), clusters_dir)

        sink = AccountingSink(
            ctx.data_dir(self.name),
            ctx.quarantine_dir(self.name),
            S.DEDUP_SCHEMA,
            size_column=S.N_BYTES,
        )
        with steps("decide"):
            decided = cogroup(
                {
                    "doc": (exact, S.DOC_ID, C.EXACT_SCHEMA),
                    "near": (near_clusters, S.DOC_ID, S.CLUSTERS_SCHEMA),
                    "partial": (partial, S.DOC_ID, C.PARTIAL_SCHEMA),
                },
                _decide,
                parts,
                fn_kwargs={"action": cfg.containment.action},
            )
            decided.write_datasink(sink)
        extra.update(_cluster_stats(clusters_dir, sink))
        extra["partial_flagged"] = count_non_null(ctx.data_dir(self.name), S.PARTIAL_DUP_OF)
        extra["step_seconds"] = steps.seconds
        return StageStats(
            stage=self.name,
            rows_in=count_rows(source_dir),
            rows_out=sink.result.rows_out,
            dropped=sink.result.dropped,
            bytes_in=sum_column(source_dir, S.N_BYTES),
            bytes_out=sink.result.bytes_out,
            extra=extra,
        )


# --- step 1: exact ------------------------------------------------------------------------


def _exact_step(docs: ray.data.Dataset, cfg: DedupConfig, parts: int) -> ray.data.Dataset:
    with_digest = docs.map_batches(_add_digest, batch_format="pyarrow")
    if not cfg.exact:
        return with_digest.map_batches(_as_unique, batch_format="pyarrow")
    return with_digest.groupby(DIGEST, num_partitions=parts).map_groups(
        _mark_exact, batch_format="pyarrow", fn_kwargs={"rule": cfg.keep}
    )


def _add_digest(batch: pa.Table) -> pa.Table:
    digests = [text_digest(t).hex() for t in batch[S.TEXT].to_pylist()]
    return batch.append_column(DIGEST, pa.array(digests, pa.string()))


def _mark_exact(group: pa.Table, rule: str) -> pa.Table:
    return C.mark_exact_group(group.drop_columns([DIGEST]), rule)


def _as_unique(batch: pa.Table) -> pa.Table:
    n = batch.num_rows
    columns = {f.name: batch[f.name] for f in S.DOCS_SCHEMA}
    columns[C.DUPLICATE_OF] = pa.nulls(n, pa.string())
    columns[C.GROUP_SIZE] = pa.array([1] * n, pa.int32())
    for name in S.DROP_COLUMNS:
        columns[name] = pa.nulls(n, pa.string())
    return pa.table(columns, schema=C.EXACT_SCHEMA)


# --- step 6: decide -----------------------------------------------------------------------


def _decide(parts: dict[str, pa.Table], action: str) -> pa.Table:
    if parts["doc"].num_rows == 0:  # a cluster or partial row whose document is not here
        return S.with_drop_columns(S.DEDUP_SCHEMA).empty_table()
    return C.decide(parts["doc"], parts["near"], parts["partial"], action)


def _cluster_stats(clusters_dir: Path, sink: AccountingSink) -> dict:
    clusters = read_parts(clusters_dir, S.CLUSTERS_SCHEMA)
    heads = clusters.select_columns([S.KIND, S.CLUSTER_SIZE, S.IS_SURVIVOR])
    histogram: dict[str, dict[str, int]] = {}
    for row in heads.iter_rows():
        if not row[S.IS_SURVIVOR]:
            continue
        sizes = histogram.setdefault(row[S.KIND], {})
        bucket = _size_bucket(row[S.CLUSTER_SIZE])
        sizes[bucket] = sizes.get(bucket, 0) + 1
    return {
        "exact_duplicates": sink.result.dropped.get(C.EXACT_DUPLICATE, 0),
        "near_duplicates": sink.result.dropped.get(C.NEAR_DUPLICATE, 0),
        "partial_duplicates": sink.result.dropped.get(C.PARTIAL_DUPLICATE, 0),
        "cluster_size_histogram": {k: dict(sorted(v.items())) for k, v in histogram.items()},
    }


def _size_bucket(size: int) -> str:
    """Cluster sizes in powers of two: "2", "3-4", "5-8", "9-16", ..."""
    high = 1 << (size - 1).bit_length()
    low = high // 2 + 1
    return str(high) if low == high else f"{low}-{high}"
