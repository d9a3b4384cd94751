"""Tokenized rows parked on disk between encoding and shard writing ("parts").

The tokenize stage encodes documents in Ray tasks. Each task writes its rows, tokens and all,
to one uncompressed Arrow IPC file under <run>/tokenize/_parts/ and hands the driver back only
the small per-row columns the plan needs, plus where the row lies (PART file, ROW index).
Once the plan is made, each shard is assembled from exactly its rows, read back from the
memory-mapped parts: no shuffle, and no token passes through the driver or the object store.

    meta = encode_items(items, spec, "uint16", seed=0, batch_rows=256, part_dir=d)
    # (items: a table of inputs.plan_items dicts; a part file per item, via tokenize_to_part)
    rows = take_rows(d, ["3f9c...arrow", ...], [0, ...], columns=PART_COLUMNS)
    recipes = shard_recipes(files, meta[PART], meta[ROW])    # a table per shard
    shard_rows = assemble_shards(recipes[0], part_dir=d)    # its rows in shard order + FILE
    dropped = quarantine_rows(drops, part_dir=d)             # drops: PART, ROW, reason, detail
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa

from pipeline import schema as S
from pipeline.plumbing.atomic import temp_path
from pipeline.tokens.batches import (
    META_COLUMNS,
    QUARANTINE_KEPT_SCHEMA,
    tokenize_batch,
    tokenized_schema,
)
from pipeline.tokens.inputs import read_item
from pipeline.tokens.lineage import CARRIED
from pipeline.tokens.mixing import ORDER
from pipeline.tokens.sink import FILE
from pipeline.tokens.tokenizers import TokenizerSpec

PARTS_DIR = "_parts"  # in the stage's directory; deleted once the shards are written
PART = "_part"  # the part file (a name inside the part directory) holding the row
ROW = "_row"  # the row's index in that file
PART_SUFFIX = ".arrow"
# What a part keeps of each row: the shard columns, the row's place in shard order, its
# lineage (lineage.py: written beside its shard) and the quarantine snippet (the keys and
# sizes the plan needs travel to the driver instead).
PART_COLUMNS = [*S.token_shard_schema("uint16").names, ORDER, *CARRIED, S.SNIPPET]


def meta_schema() -> pa.Schema:
    """The per-row columns tokenize_to_part returns (no text, no tokens)."""
    fields = {f.name: f for f in tokenized_schema("uint32")}
    return pa.schema(
        [fields[c] for c in META_COLUMNS] + [pa.field(PART, pa.string()), pa.field(ROW, pa.int32())]
    )


def tokenize_to_part(
    batch: pa.Table,
    spec: TokenizerSpec,
    token_dtype: str,
    seed: int,
    batch_rows: int,
    part_dir: str,
) -> pa.Table:
    """Encode INPUT_SCHEMA rows (batch_rows documents per tokenizer call), write them to a
    new part file in `part_dir` and return their meta_schema() rows (in batch order)."""
    n = batch.num_rows
    if n == 0:
        return meta_schema().empty_table()
    chunks = [
        tokenize_batch(batch.slice(i, batch_rows), spec, token_dtype, seed)
        for i in range(0, n, batch_rows)
    ]
    table = pa.concat_tables(chunks) if len(chunks) > 1 else chunks[0]
    for column in CARRIED:
        table = table.append_column(column, batch[column])
    name = f"{uuid.uuid4().hex}{PART_SUFFIX}"
    write_part(table.select(PART_COLUMNS), Path(part_dir) / name)
    meta = table.select(META_COLUMNS)
    return meta.append_column(PART, pa.array([name] * n, pa.string())).append_column(
        ROW, pa.array(np.arange(n, dtype=np.int32))
    )


def encode_items(
    items: pa.Table,
    spec: TokenizerSpec,
    token_dtype: str,
    seed: int,
    batch_rows: int,
    part_dir: str,
) -> pa.Table:
    """Read and encode each read item (inputs.plan_items) of `items`, a part file each;
    returns their meta_schema() rows."""
    metas = [
        tokenize_to_part(read_item(item), spec, token_dtype, seed, batch_rows, part_dir)
        for item in items.to_pylist()
    ]
    return pa.concat_tables(metas) if metas else meta_schema().empty_table()


def write_part(table: pa.Table, path: Path) -> None:
    """An uncompressed Arrow IPC file, written under a temporary name and renamed: a task
    that dies half way leaves no file a reader could take for whole. Not fsynced: a part
    lives for one stage run, and a crash reruns the stage."""
    tmp = temp_path(path)
    try:
        with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        tmp.rename(path)
    finally:
        tmp.unlink(missing_ok=True)


def take_rows(
    part_dir: str | Path, parts: Sequence[str], rows: Sequence[int], columns: Sequence[str]
) -> pa.Table:
    """The given (part, row) rows, grouped by part in name order, rows ascending in each,
    as one contiguous table (its own memory: no part stays mapped)."""
    parts = np.asarray(parts, dtype=object)
    rows = np.asarray(rows, dtype=np.int64)
    tables = []
    for name in sorted(set(parts.tolist())):
        wanted = np.sort(rows[parts == name])
        with pa.memory_map(str(Path(part_dir) / name), "r") as source:
            table = pa.ipc.open_file(source).read_all().select(list(columns))
            if len(wanted) != table.num_rows or np.any(wanted != np.arange(len(wanted))):
                table = table.take(pa.array(wanted))
            # Copied out of the map before it closes (a whole part, mostly: one shard's).
            tables.append(table.combine_chunks())
    if not tables:
        raise ValueError("no rows asked for")
    return pa.concat_tables(tables).combine_chunks()


def shard_recipes(
    files: np.ndarray, parts: pa.ChunkedArray, rows: pa.ChunkedArray
) -> list[pa.Table]:
    """Per shard, in name order, a one-row table: FILE and the PART and ROW of each of its
    rows. `files` holds each row's shard ("" for a dropped row), `parts`/`rows` its place."""
    files = np.asarray(files, dtype=object)
    kept = np.flatnonzero(files != "")
    kept = kept[np.argsort(files[kept], kind="stable")]
    if not len(kept):
        return []
    names, starts = np.unique(files[kept], return_index=True)
    part_names = np.asarray(parts.to_numpy(zero_copy_only=False), dtype=object)
    row_index = rows.to_numpy()
    return [
        pa.table(
            {
                FILE: pa.array([name], pa.string()),
                PART: pa.array([part_names[chunk].tolist()], pa.list_(pa.string())),
                ROW: pa.array([row_index[chunk]], pa.list_(pa.int32())),
            }
        )
        for name, chunk in zip(names, np.split(kept, starts[1:]), strict=True)
    ]


def assemble_shards(recipes: pa.Table, part_dir: str) -> pa.Table:
    """Recipes (FILE; PART and ROW lists) -> every recipe's rows with FILE, in shard order."""
    tables = []
    for recipe in recipes.to_pylist():
        rows = take_rows(part_dir, recipe[PART], recipe[ROW], PART_COLUMNS[:-1])
        rows = rows.sort_by(ORDER)
        tables.append(rows.append_column(FILE, pa.array([recipe[FILE]] * rows.num_rows)))
    return pa.concat_tables(tables)


def quarantine_rows(drops: pa.Table, part_dir: str) -> pa.Table:
    """Dropped rows (PART, ROW, reason, detail) -> their quarantine records: ids, counts,
    reason, detail and snippet (QUARANTINE_KEPT_SCHEMA + DROP_COLUMNS)."""
    keys = [
        (p, r, reason, detail)
        for p, r, reason, detail in zip(
            drops[PART].to_pylist(),
            drops[ROW].to_pylist(),
            drops[S.DROP_REASON].to_pylist(),
            drops[S.DROP_DETAIL].to_pylist(),
            strict=True,
        )
    ]
    keys.sort(key=lambda k: (k[0], k[1]))  # take_rows' order
    columns = [*QUARANTINE_KEPT_SCHEMA.names, S.SNIPPET]
    rows = take_rows(part_dir, [k[0] for k in keys], [k[1] for k in keys], columns)
    return pa.table(
        {
            **{c: rows[c] for c in QUARANTINE_KEPT_SCHEMA.names},
            S.DROP_REASON: pa.array([k[2] for k in keys], pa.string()),
            S.DROP_DETAIL: pa.array([k[3] for k in keys], pa.string()),
            S.SNIPPET: rows[S.SNIPPET],
        }
    )
