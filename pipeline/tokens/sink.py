"""The Ray Data sink that writes token shards: whole shards, temp file + rename, sha256 each,
and beside each its lineage file (lineage.py), from the same rows in the same task.

Rows arrive grouped by their shard's file name (the `_file` column, one group per shard,
from `groupby(_file).map_groups`); a write task may get several shards and writes each
with `write_shard`. The planned rows per file are known in advance, so a shard that
arrives incomplete (split across write tasks) is an error, not a short file.

    sink = ShardSink(data_dir, "uint16", plan.planned)
    grouped.write_datasink(sink)
    sink.shards   # [ShardInfo, ...] sorted by file name
    sink.lineage  # [LineageInfo, ...] in the same order
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from ray.data import Datasink
from ray.data.block import BlockAccessor
from ray.data.datasource.datasink import WriteResult

from pipeline.token_shards.files import ShardInfo, write_shard
from pipeline.tokens.lineage import LineageInfo, write_lineage
from pipeline.tokens.mixing import ORDER

FILE = "_file"  # the shard a row belongs to (set by the stage from the plan)


class ShardSink(Datasink[list[tuple[ShardInfo, LineageInfo]]]):
    def __init__(self, directory: Path, token_dtype: str, planned: dict[str, tuple[int, int]]):
        self.directory = Path(directory)
        self.token_dtype = token_dtype
        self.planned = dict(planned)  # file -> (rows, tokens)
        self.shards: list[ShardInfo] = []
        self.lineage: list[LineageInfo] = []

    def on_write_start(self, schema=None) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)

    def write(self, blocks: Iterable, ctx) -> list[tuple[ShardInfo, LineageInfo]]:
        tables = [BlockAccessor.for_block(b).to_arrow() for b in blocks]
        tables = [t for t in tables if t.num_rows]
        if not tables:
            return []
        table = pa.concat_tables(tables, promote_options="permissive")
        infos = []
        names = sorted(pc.unique(table[FILE]).to_pylist())
        for name in names:
            rows = table if len(names) == 1 else table.filter(pc.equal(table[FILE], name))
            order = rows[ORDER].to_numpy()
            if np.any(order[1:] < order[:-1]):  # most often already in order: no copy then
                rows = rows.sort_by(ORDER)
            expected = self.planned.get(name)
            if expected is None or rows.num_rows != expected[0]:
                raise RuntimeError(
                    f"{name}: {rows.num_rows} rows reached this write task, the plan has "
                    f"{expected}: a shard was split across tasks (is it larger than Ray "
                    "Data's target_max_block_size?)"
                )
            shard = write_shard(self.directory, name, rows, self.token_dtype)
            infos.append((shard, write_lineage(self.directory, name, rows)))
        return infos

    def on_write_complete(
        self, write_result: WriteResult[list[tuple[ShardInfo, LineageInfo]]]
    ) -> None:
        pairs = sorted(
            (pair for part in write_result.write_returns for pair in part),
            key=lambda pair: pair[0].file,
        )
        shards = [shard for shard, _ in pairs]
        names = [s.file for s in shards]
        if names != sorted(self.planned) or len(set(names)) != len(names):
            raise RuntimeError(
                f"shards written {names} differ from the plan {sorted(self.planned)}"
            )
        for s in shards:
            if (s.rows, s.tokens) != tuple(self.planned[s.file]):
                raise RuntimeError(
                    f"{s.file}: wrote {s.rows} rows, {s.tokens} tokens; "
                    f"planned {self.planned[s.file]}"
                )
        self.shards = shards
        self.lineage = [lineage for _, lineage in pairs]
