"""The dedup stage's work files: units of input, per-unit document sets, partitioned keys.

Every document gets an integer index (its unit's first index plus its row), so the hot path
moves int64 arrays, never string ids. Files are Arrow IPC, read memory-mapped: a reader
takes one record batch or a few rows without decoding the rest.

    units = plan_units(ingest_data_dir, unit_rows=20_000)     # from Parquet footers only
    write_partitioned(path, table, by=keys_u64, parts=4)      # record batch p: rows hash p
    rows = read_partition([path, ...], p, schema)             # batch p of every file
    values, offsets = DocStore(docs_dir, sets_dir, units).gather(idx)   # CSR sets of those

A work directory must be visible to every worker (shared storage on a cluster), as every
stage's input and output already is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import schema as S
from pipeline.ray_ops import parquet_parts

IDX = "idx"
SHINGLES = "shingles"
N_ANCHORS = "n_anchors"
SIGNATURE = "signature"


@dataclass(frozen=True)
class Unit:
    """Consecutive row groups of one input file, or a slice of one large row group: the work
    of one map task."""

    number: int
    path: str
    row_groups: tuple[int, ...]
    offset: int  # first row within the row groups read
    rows: int
    start: int  # global index of its first document

    @property
    def stop(self) -> int:
        return self.start + self.rows


def plan_units(input_dir: Path, unit_rows: int) -> list[Unit]:
    """Group the input's row groups into units of at most `unit_rows` documents; a larger
    row group is cut into slices."""
    units: list[Unit] = []
    start = 0

    def add(path: str, groups: list[int], offset: int, rows: int) -> None:
        nonlocal start
        units.append(Unit(len(units), path, tuple(groups), offset, rows, start))
        start += rows

    for path in parquet_parts(input_dir):
        meta = pq.ParquetFile(path).metadata
        pending: list[int] = []
        pending_rows = 0
        for group in range(meta.num_row_groups):
            n = meta.row_group(group).num_rows
            if pending and pending_rows + n > unit_rows:
                add(path, pending, 0, pending_rows)
                pending, pending_rows = [], 0
            if n > unit_rows:
                for offset in range(0, n, unit_rows):
                    add(path, [group], offset, min(unit_rows, n - offset))
            elif n:
                pending.append(group)
                pending_rows += n
        if pending:
            add(path, pending, 0, pending_rows)
    return units


def read_unit(unit: Unit, columns: list[str] | None) -> pa.Table:
    table = pq.ParquetFile(unit.path).read_row_groups(list(unit.row_groups), columns=columns)
    return table.slice(unit.offset, unit.rows)


def unit_file(directory: Path, unit: int | Unit) -> Path:
    number = unit.number if isinstance(unit, Unit) else unit
    return Path(directory) / f"{number:05d}.arrow"


def write_table(path: Path, table: pa.Table) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)


def read_table(path: Path) -> pa.Table:
    """A whole IPC file, memory-mapped (zero copy)."""
    with pa.memory_map(str(path)) as source:
        return pa.ipc.open_file(source).read_all()


_MUL64 = np.uint64(0x9E3779B97F4A7C15)


def partition_of(keys: np.ndarray, parts: int) -> np.ndarray:
    """The partition of each uint64 key, from the high bits of a multiplicative hash: anchor
    keys are chosen by their low bits, so those cannot spread them."""
    mixed = np.asarray(keys, dtype=np.uint64) * _MUL64
    return ((mixed >> np.uint64(32)) % np.uint64(parts)).astype(np.int64)


def write_partitioned(path: Path, table: pa.Table, partition: np.ndarray, parts: int) -> None:
    """One record batch per partition (possibly empty), rows in `partition` order."""
    order = np.argsort(partition, kind="stable")
    bounds = np.searchsorted(partition[order], np.arange(parts + 1))
    table = table.take(pa.array(order))
    path.parent.mkdir(parents=True, exist_ok=True)
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        for p in range(parts):
            chunk = table.slice(bounds[p], bounds[p + 1] - bounds[p]).combine_chunks()
            writer.write_batch(_one_batch(chunk))


def _one_batch(table: pa.Table) -> pa.RecordBatch:
    batches = table.to_batches()
    if not batches:
        return pa.RecordBatch.from_pylist([], schema=table.schema)
    return batches[0]


def read_partition(paths: list[Path], p: int, schema: pa.Schema) -> pa.Table:
    """Record batch `p` of every partitioned file, as one table."""
    batches = []
    for path in paths:
        with pa.memory_map(str(path)) as source:
            batches.append(pa.ipc.open_file(source).get_batch(p))
    return pa.Table.from_batches(batches, schema=schema)


class DocStore:
    """What later steps need of any documents, by index: their doc_id, n_bytes and anchor
    count from the per-unit docs files (row = idx - unit start), and the shingle sets (and
    signatures) of candidate documents from the per-unit sets files."""

    def __init__(self, docs_dir: Path, sets_dir: Path, units: list[Unit]):
        self.docs_dir, self.sets_dir = Path(docs_dir), Path(sets_dir)
        self.starts = np.array([u.start for u in units], dtype=np.int64)

    def _by_unit(self, idx: np.ndarray):
        """(unit, the entries of `idx` in it) for each unit that `idx` (ascending) touches."""
        idx = np.asarray(idx, dtype=np.int64)
        owner = np.searchsorted(self.starts, idx, side="right") - 1
        for u in np.unique(owner):
            yield int(u), idx[owner == u]

    def columns(self, idx: np.ndarray, names: list[str]) -> pa.Table:
        """Rows `idx` (ascending) of the docs files, columns `names`."""
        pieces = []
        for u, mine in self._by_unit(idx):
            table = read_table(unit_file(self.docs_dir, u)).select(names)
            pieces.append(table.take(pa.array(mine - self.starts[u])))
        schema = pa.schema([DOCS_FILE_SCHEMA.field(n) for n in names])
        return pa.concat_tables(pieces) if pieces else schema.empty_table()

    def sets(self, idx: np.ndarray, names: list[str]) -> pa.Table:
        """Rows `idx` (ascending, all candidate documents) of the sets files."""
        pieces = []
        for u, mine in self._by_unit(idx):
            table = read_table(unit_file(self.sets_dir, u))
            at = np.searchsorted(table[IDX].to_numpy(), mine)
            pieces.append(table.select(names).take(pa.array(at)))
        schema = pa.schema([SETS_FILE_SCHEMA.field(n) for n in names])
        return pa.concat_tables(pieces) if pieces else schema.empty_table()

    def gather(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """CSR (values, offsets) of the shingle sets of documents `idx` (ascending)."""
        shingles = self.sets(idx, [SHINGLES])[SHINGLES].combine_chunks()
        offsets = np.asarray(shingles.offsets, dtype=np.int64)
        values = shingles.values.to_numpy()
        return values[offsets[0] : offsets[-1]], offsets - offsets[0]


# Per unit, one row per document in input order: what survivor rules and filters need.
DOCS_FILE_SCHEMA = pa.schema(
    [
        pa.field(S.DOC_ID, pa.string()),
        pa.field(S.N_BYTES, pa.int64()),
        pa.field(N_ANCHORS, pa.int32()),
    ]
)
# Per unit, the candidate documents only (some pair has them), ascending idx: their exact sets.
SETS_FILE_SCHEMA = pa.schema(
    [
        pa.field(IDX, pa.int64()),
        pa.field(SHINGLES, pa.large_list(pa.uint32())),
        pa.field(SIGNATURE, pa.list_(pa.uint32())),
    ]
)
