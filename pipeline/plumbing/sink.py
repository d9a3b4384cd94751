"""The one Ray Data sink every stage writes through: kept rows to data, dropped rows aside.

A stage emits its output columns plus the drop columns (schema.DROP_COLUMNS). Each write
task splits its blocks by `reason`: rows without one go to `<data_dir>/part-NNNNN.parquet`,
the others (all their columns, for browsing) to `<quarantine_dir>/part-NNNNN.parquet`. It
returns what it wrote, so the stage's accounting comes from the same pass as the data.

    sink = AccountingSink(data_dir, quarantine_dir, schema.DOCS_SCHEMA)
    dataset.write_datasink(sink)
    sink.result  # SinkResult(rows_out=..., dropped={"invalid_json": 3}, ...)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from ray.data import Datasink
from ray.data.block import BlockAccessor
from ray.data.datasource.datasink import WriteResult

from pipeline import schema as S
from pipeline.plumbing.atomic import commit, temp_path
from pipeline.stats import merge_counts

# zstd: stage outputs are mostly text; it halves Parquet's default (snappy) size at little cost.
PARQUET_OPTIONS: dict[str, Any] = {"compression": "zstd"}


@dataclass
class SinkResult:
    rows_out: int = 0
    bytes_out: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    rows_out_by: dict[str, int] = field(default_factory=dict)  # kept rows per `count_by` value
    files: list[str] = field(default_factory=list)


class _PartWriter:
    """One Parquet file, written to a temporary name and renamed when complete."""

    def __init__(self, final: Path, schema: pa.Schema):
        self.final, self.schema = final, schema
        self._tmp: Path | None = None
        self._writer: pq.ParquetWriter | None = None

    def write(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        if self._writer is None:
            self._tmp = temp_path(self.final)
            self._writer = pq.ParquetWriter(self._tmp, self.schema, **PARQUET_OPTIONS)
        self._writer.write_table(table.cast(self.schema))

    def close(self, failed: bool) -> str | None:
        """Commit the file (None if nothing was written); on failure remove the temporary."""
        if self._writer is None:
            return None
        self._writer.close()
        if failed:
            self._tmp.unlink(missing_ok=True)
            return None
        commit(self._tmp, self.final)
        return str(self.final)


class AccountingSink(Datasink[SinkResult]):
    def __init__(
        self,
        data_dir: Path,
        quarantine_dir: Path,
        data_schema: pa.Schema,
        count_by: str | None = S.SOURCE,
        size_column: str | None = None,
    ):
        self.count_by = count_by
        # bytes_out sums this column (e.g. a text's UTF-8 size); else Arrow's in-memory size.
        self.size_column = size_column
        self.data_dir = Path(data_dir)
        self.quarantine_dir = Path(quarantine_dir)
        self.data_schema = data_schema
        self.result = SinkResult()

    def write(self, blocks: Iterable, ctx) -> SinkResult:
        tables = (BlockAccessor.for_block(block).to_arrow() for block in blocks)
        return self.write_part(tables, f"part-{ctx.task_idx:05d}.parquet")

    def write_part(self, tables: Iterable[pa.Table], name: str) -> SinkResult:
        """Split `tables` into <data_dir>/name and <quarantine_dir>/name; what was written.
        Also for plain Ray tasks that write their own part (the driver sums the results)."""
        result = SinkResult()
        kept_writer = _PartWriter(self.data_dir / name, self.data_schema)
        dropped_writer: _PartWriter | None = None
        dropped_counts: list[dict[str, int]] = []
        kept_counts: list[dict[str, int]] = []
        failed = True
        try:
            for table in tables:
                if table.num_rows == 0:  # an empty group's block may lack the columns
                    continue
                is_kept = pc.is_null(table[S.DROP_REASON])
                kept = table.filter(is_kept).select(self.data_schema.names)
                kept_writer.write(kept)
                result.rows_out += kept.num_rows
                result.bytes_out += (
                    pc.sum(kept[self.size_column]).as_py() or 0 if self.size_column else kept.nbytes
                )
                if self.count_by is not None:
                    kept_counts.append(_count_values(kept, self.count_by))
                dropped = table.filter(pc.invert(is_kept))
                if dropped.num_rows:
                    if dropped_writer is None:
                        dropped_writer = _PartWriter(self.quarantine_dir / name, dropped.schema)
                    dropped_writer.write(dropped)
                    dropped_counts.append(_count_values(dropped, S.DROP_REASON))
            failed = False
        finally:
            for writer in (kept_writer, dropped_writer):
                if writer is not None and (path := writer.close(failed)):
                    result.files.append(path)
        result.dropped = merge_counts(dropped_counts)
        result.rows_out_by = merge_counts(kept_counts)
        return result

    def on_write_complete(self, write_result: WriteResult[SinkResult]) -> None:
        self.result = combine_results(write_result.write_returns)


def combine_results(parts: Iterable[SinkResult]) -> SinkResult:
    parts = list(parts)
    return SinkResult(
        rows_out=sum(p.rows_out for p in parts),
        bytes_out=sum(p.bytes_out for p in parts),
        dropped=merge_counts(p.dropped for p in parts),
        rows_out_by=merge_counts(p.rows_out_by for p in parts),
        files=sorted(f for p in parts for f in p.files),
    )


def _count_values(table: pa.Table, column: str) -> dict[str, int]:
    if table.num_rows == 0:
        return {}
    counts = pc.value_counts(table[column]).to_pylist()
    return {c["values"]: c["counts"] for c in counts}
