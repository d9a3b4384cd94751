"""The tokenize stage's input: DOCS and REWRITES Parquet parts as INPUT_SCHEMA rows, read in
planned *items*: row ranges of one Parquet row group each.

The driver plans the items from the footers and the `n_bytes` column alone (no text). Each
item takes a share of the text not yet planned (guided self-scheduling: large items first,
smaller ones as the work runs out), and the list is sorted largest first, so the tasks that
encode them start on the long ones, stay busy, and finish within a small item of each other
however long documents cluster in the input. Each task reads its own rows.

    items = plan_items([(docs_dir, "raw")], cpus=2)    # [{"path", "kind", "row_group", ...}]
    rows = read_item(items[0])                         # INPUT_SCHEMA rows
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import ray

from pipeline import schema as S
from pipeline.ray_ops import parquet_parts
from pipeline.tokens.lineage import CARRIED_FIELDS, FROM_INPUT, carried_columns
from pipeline.tokens.mixing import PARENT_ID

# One row per raw document or rewrite; DOC_ID is the row's id (a rewrite's rewrite_id). The
# lineage columns (lineage.CARRIED, PARENT_ID among them) travel with it into the parts.
INPUT_SCHEMA = pa.schema(
    [
        pa.field(S.DOC_ID, pa.string()),
        pa.field(PARENT_ID, pa.string()),
        pa.field(S.SOURCE, pa.string()),
        pa.field(S.KIND, pa.string()),
        pa.field(S.STYLE, pa.string()),
        pa.field(S.TEXT, pa.large_string()),
        pa.field(S.N_BYTES, pa.int64()),
        *[f for f in CARRIED_FIELDS if f.name != PARENT_ID],
    ]
)
# Each item takes 1/(GUIDE x CPUs) of the text not yet planned: the first round (one item
# per CPU) covers about 40% of the text, and the items shrink from there.
GUIDE = 2
# The smallest item bounds how long the last task can run alone: 1 MiB of text encodes in
# ~0.3 s on one core. Smaller ones only add overhead (a task each, which Ray Data hands out
# in some 20 ms, and a decoded row group, unless the process has it already); larger ones
# only add memory.
MIN_ITEM_BYTES = 1 << 20
MAX_ITEM_BYTES = 128 << 20
ITEM_FIELDS = ("path", "kind", "row_group", "start", "stop", "bytes")


def plan_items(
    sources: list[tuple[Path, str]],
    cpus: int,
    min_bytes: int | None = None,
    max_bytes: int | None = None,
) -> list[dict]:
    """Read items covering every row of the (directory, kind) sources once, largest first;
    items of MIN_ITEM_BYTES to MAX_ITEM_BYTES of text unless given."""
    min_bytes = MIN_ITEM_BYTES if min_bytes is None else min_bytes
    max_bytes = MAX_ITEM_BYTES if max_bytes is None else max_bytes
    groups = [
        (part, kind, row_group, sizes)
        for directory, kind in sources
        for part in parquet_parts(directory)
        for row_group, sizes in enumerate(_row_group_sizes(part))
    ]
    cuts = guided_cuts([sizes for *_, sizes in groups], cpus, min_bytes, max_bytes)
    items = [
        dict(zip(ITEM_FIELDS, (*groups[g][:3], start, stop, size), strict=True))
        for g, start, stop, size in cuts
    ]
    # Largest first; equal sizes in input order (sorted is stable).
    return sorted(items, key=lambda item: -item["bytes"])


def _row_group_sizes(part: str) -> list[np.ndarray]:
    file = pq.ParquetFile(part)
    return [
        file.read_row_group(i, columns=[S.N_BYTES])[S.N_BYTES].to_numpy()
        for i in range(file.metadata.num_row_groups)
    ]


def guided_cuts(
    groups: list[np.ndarray], cpus: int, min_bytes: int, max_bytes: int
) -> list[tuple[int, int, int, int]]:
    """Cut groups of row sizes into (group, start, stop, bytes) ranges, in input order.

    A range ends at the row where its bytes reach clamp(unplanned bytes / (GUIDE x cpus),
    min_bytes, max_bytes), or at its group's end. Every row lies in exactly one range."""
    remaining = int(sum(int(np.sum(g)) for g in groups))
    cuts = []
    for g, sizes in enumerate(groups):
        ends = np.cumsum(np.asarray(sizes, dtype=np.int64))
        start = 0
        while start < len(ends):
            before = int(ends[start - 1]) if start else 0
            target = min(max_bytes, max(min_bytes, remaining // (GUIDE * cpus)))
            stop = min(len(ends), int(np.searchsorted(ends, before + target)) + 1)
            size = int(ends[stop - 1]) - before
            cuts.append((g, start, stop, size))
            remaining -= size
            start = stop
    return cuts


def input_dataset(items: list[dict]) -> ray.data.Dataset:
    """The items' rows as a dataset of INPUT_SCHEMA rows, a task (and a block) per item."""
    if not items:
        return ray.data.from_arrow(INPUT_SCHEMA.empty_table())
    return ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
        read_items, batch_format="pyarrow"
    )


def read_items(items: pa.Table) -> pa.Table:
    """INPUT_SCHEMA rows of every item in `items` (a table of ITEM_FIELDS), in order."""
    tables = [read_item(item) for item in items.to_pylist()]
    return pa.concat_tables(tables) if tables else INPUT_SCHEMA.empty_table()


def read_item(item: dict) -> pa.Table:
    """The item's rows (start to stop of its row group) as INPUT_SCHEMA rows."""
    group = _row_group(item["path"], item["row_group"], item["kind"])
    return as_input(group.slice(item["start"], item["stop"] - item["start"]), item["kind"])


# The row group this process decoded last. The items of a row group go to the same few
# worker processes one after another (largest first); decoding it once per process rather
# than once per item saves ~5% of the encoding. Memory: one decoded row group per process
# (ingest's parts hold blocks of at most ~128 MiB).
_LAST_GROUP: dict[tuple, pa.Table] = {}


def _row_group(path: str, row_group: int, kind: str) -> pa.Table:
    stat = os.stat(path)  # a part rewritten in place is read again
    key = (path, row_group, kind, stat.st_mtime_ns, stat.st_size)
    if key not in _LAST_GROUP:
        _LAST_GROUP.clear()
        file = pq.ParquetFile(path)
        columns = _columns(kind, file.schema_arrow.names)
        _LAST_GROUP[key] = file.read_row_group(row_group, columns=columns)
    return _LAST_GROUP[key]


def _columns(kind: str, present: list[str]) -> list[str]:
    """The columns to read: those the row needs, and the lineage columns the part has (an
    output written before a column existed lacks it; as_input fills it with nulls)."""
    if kind == S.KIND_RAW:
        needed = [S.DOC_ID, S.SOURCE, S.TEXT, S.N_BYTES]
    else:
        needed = [S.REWRITE_ID, S.DOC_ID, S.SOURCE, S.STYLE, S.TEXT, S.N_BYTES]
    return needed + [c for c in FROM_INPUT[kind] if c in present]


def as_input(batch: pa.Table, kind: str) -> pa.Table:
    """Columns of a DOCS (kind raw) or REWRITES (kind rewrite) table as INPUT_SCHEMA."""
    n = batch.num_rows
    raw = kind == S.KIND_RAW
    return pa.table(
        {
            S.DOC_ID: batch[S.DOC_ID] if raw else batch[S.REWRITE_ID],
            PARENT_ID: batch[S.DOC_ID],
            S.SOURCE: batch[S.SOURCE],
            S.KIND: pa.array([kind] * n, pa.string()),
            S.STYLE: pa.nulls(n, pa.string()) if raw else batch[S.STYLE],
            S.TEXT: batch[S.TEXT].cast(pa.large_string()),
            S.N_BYTES: batch[S.N_BYTES],
            **carried_columns(batch, kind),
        },
        schema=INPUT_SCHEMA,
    )
