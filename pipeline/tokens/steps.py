"""The tokenize stage's Ray Data executions: encode the input, then write what the plan says.

    rows = encode(sources, spec, "uint16", cfg, part_dir)      # per-row meta; tokens in parts
    dropped = write_quarantine(rows, reasons, plan, cfg, part_dir, data_dir, quarantine_dir)
    shards, lineage = write_shards(rows, files, plan, "uint16", part_dir, data_dir)

Encoding is the only step that touches text: one pass, a task per planned read item
(inputs.plan_items). Writing reads back exactly the rows each shard (or the quarantine)
needs from the parts; no shuffle.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyarrow as pa
import ray

from pipeline import schema as S
from pipeline.plumbing.resources import cluster_cpus, task_resources
from pipeline.plumbing.sink import AccountingSink
from pipeline.token_shards.files import ShardInfo
from pipeline.tokens.batches import QUARANTINE_KEPT_SCHEMA, drop_details
from pipeline.tokens.inputs import plan_items
from pipeline.tokens.lineage import LineageInfo
from pipeline.tokens.mixing import Plan, is_kept
from pipeline.tokens.parts import (
    PART,
    ROW,
    assemble_shards,
    encode_items,
    meta_schema,
    quarantine_rows,
    shard_recipes,
)
from pipeline.tokens.sink import ShardSink
from pipeline.tokens.tokenizers import TokenizerSpec


def encode(
    sources: list[tuple[Path, str]], spec: TokenizerSpec, dtype: str, cfg, part_dir: Path
) -> pa.Table:
    """Encode every input row on Ray: tokens go to part files in `part_dir`, and the rows'
    parts.meta_schema() columns come back, in no particular order."""
    items = plan_items(sources, cluster_cpus())
    if not items:
        return meta_schema().empty_table()
    part_dir.mkdir(parents=True, exist_ok=True)
    # A task per read item, dispatched in the plan's order (largest first); each reads its
    # own rows, so no read task streams blocks to them, and nothing is shuffled.
    with _one_operator():
        tokenized = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
            encode_items,
            fn_kwargs={
                "spec": spec,
                "token_dtype": dtype,
                "seed": cfg.shards.seed,
                "batch_rows": cfg.tokenizer.batch_rows,
                "part_dir": str(part_dir),
            },
            batch_size=None,
            batch_format="pyarrow",
            **task_resources(),
        )
        tables = list(tokenized.iter_batches(batch_size=None, batch_format="pyarrow"))
    return pa.concat_tables(tables) if tables else meta_schema().empty_table()


def write_quarantine(
    rows: pa.Table,
    reasons: np.ndarray,
    plan: Plan,
    cfg,
    part_dir: Path,
    data_dir: Path,
    quarantine_dir: Path,
) -> dict[str, int]:
    """Dropped rows, with reason and detail, to quarantine/tokenize; returns the counts."""
    dropped = np.flatnonzero(~is_kept(reasons))
    if not len(dropped):
        return {}
    index = pa.array(dropped)
    n_tokens = rows[S.N_TOKENS].to_numpy()[dropped]
    drops = pa.table(
        {
            PART: rows[PART].take(index),
            ROW: rows[ROW].take(index),
            S.DROP_REASON: pa.array(list(reasons[dropped]), pa.string()),
            S.DROP_DETAIL: pa.array(
                drop_details(reasons[dropped], n_tokens, plan, cfg.shards), pa.string()
            ),
        }
    )
    sink = AccountingSink(data_dir, quarantine_dir, QUARANTINE_KEPT_SCHEMA, count_by=None)
    ray.data.from_arrow(drops).map_batches(
        quarantine_rows, batch_format="pyarrow", fn_kwargs={"part_dir": str(part_dir)}
    ).write_datasink(sink)
    return sink.result.dropped


def write_shards(
    rows: pa.Table, files: np.ndarray, plan: Plan, dtype: str, part_dir: Path, data_dir: Path
) -> tuple[list[ShardInfo], list[LineageInfo]]:
    """Each planned shard assembled from its rows' parts and written by ShardSink, with its
    lineage file; both lists in shard name order."""
    if not plan.planned:
        return [], []
    recipes = shard_recipes(files, rows[PART], rows[ROW])
    sink = ShardSink(data_dir, dtype, plan.planned)
    # One recipe per block, so the shards are assembled and written in parallel; a shard
    # leaves its task as one block.
    with _one_operator(), _block_size_at_least(2 * _largest_shard_bytes(plan, dtype)):
        ray.data.from_arrow(recipes).map_batches(
            assemble_shards, batch_format="pyarrow", fn_kwargs={"part_dir": str(part_dir)}
        ).write_datasink(sink)
    return sink.shards, sink.lineage


def _largest_shard_bytes(plan: Plan, dtype: str) -> int:
    itemsize = np.dtype(dtype).itemsize
    # Tokens plus ~200 bytes of ids, offsets and keys per row and its lineage: a raw row's
    # input path, a rewrite's prompt, model, hashes, sampling JSON (~300 bytes) and chunk
    # spans (20 bytes each). 2 KiB a row is an upper estimate: a larger block limit costs
    # nothing, a smaller one would split a shard across write tasks.
    return max(tokens * itemsize + rows * 2048 for rows, tokens in plan.planned.values())


@contextmanager
def _one_operator() -> Iterator[None]:
    """For a dataset of one map operator: without Ray Data's per-operator reservations,
    which hold such an operator to a single task until their first refresh (about a second:
    a CPU idle while the largest item, first, runs), and serve nothing with one operator."""
    context = ray.data.DataContext.get_current()
    old = context.op_resource_reservation_enabled
    context.op_resource_reservation_enabled = False
    try:
        yield
    finally:
        context.op_resource_reservation_enabled = old


@contextmanager
def _block_size_at_least(nbytes: int) -> Iterator[None]:
    """Ray Data splits blocks above target_max_block_size; a shard must stay one block."""
    context = ray.data.DataContext.get_current()
    old = context.target_max_block_size
    if old is not None and nbytes > old:
        context.target_max_block_size = nbytes
    try:
        yield
    finally:
        context.target_max_block_size = old
