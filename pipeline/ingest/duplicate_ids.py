"""One document per doc_id: records that reuse an id already taken are quarantined.

Two records of one source with the same id (the same record in two dumps, or ids that
restart in every file) would get the same doc_id, and every later stage joins on doc_id:
dedup would merge them into one node, rewrites would share a rewrite_id. The first
occurrence, by (path, location), keeps the id; each later one goes to quarantine/ingest with
reason `duplicate_id` and a detail naming the first. Records without an id are keyed by a
hash of their text, so there a duplicate id means the same text: dedup's exact pass, early.

Quarantine, not renaming: an id is the record's link back to its source, and a made-up one
(`x#2`) may be a real id elsewhere; the quarantined row keeps its full text and lineage, and
a source whose ids are unique only per file wants `id_field: null` (content-hash ids).

The check runs after the ingest sink wrote its parts to a scratch directory:
1. the key columns (doc_id, path, location) of every part, and the later occurrences:
   in the driver when the corpus is small, else a Ray Data groupby on doc_id;
2. parts with later occurrences are rewritten without them (a Ray task per part, from the
   untouched scratch part, so a retried task writes the same files); the others are moved.

    moved = settle_duplicate_ids(scratch_dir, data_dir, quarantine_dir)
    moved.rows, moved.bytes, moved.by_source
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import ray

from pipeline import schema as S
from pipeline.ingest.readers import Reason
from pipeline.plumbing.atomic import atomic_path
from pipeline.plumbing.resources import default_partitions
from pipeline.plumbing.sink import PARQUET_OPTIONS

PART = "part"
FIRST_PATH = "first_path"
FIRST_LOCATION = "first_location"
KEY_COLUMNS = [S.DOC_ID, S.PATH, S.LOCATION]
LATER_SCHEMA = pa.schema(
    [
        pa.field(PART, pa.string()),
        pa.field(S.DOC_ID, pa.string()),
        pa.field(S.PATH, pa.string()),
        pa.field(S.LOCATION, pa.int64()),
        pa.field(FIRST_PATH, pa.string()),
        pa.field(FIRST_LOCATION, pa.int64()),
    ]
)
MOVED_SCHEMA = pa.schema(
    [pa.field(PART, pa.string()), pa.field(S.SOURCE, pa.string()),
     pa.field("rows", pa.int64()), pa.field("bytes", pa.int64())]
)  # fmt: skip
# Up to this many documents the key columns (~100 bytes a row) are checked in the driver:
# one sort, no shuffle. Above it a distributed groupby keeps the driver's memory flat.
DRIVER_CHECK_MAX_ROWS = 1_000_000


@dataclass
class Moved:
    rows: int = 0
    bytes: int = 0
    by_source: dict[str, int] = field(default_factory=dict)


# --- pure core ----------------------------------------------------------------------------


def later_occurrences(keys: pa.Table) -> pa.Table:
    """Rows (PART, DOC_ID, PATH, LOCATION) whose doc_id an earlier row has, with that first row.

    Earlier means smaller (path, location), a null location first: an order that depends on
    the input alone, not on which task read what first.
    """
    if keys.num_rows < 2:
        return LATER_SCHEMA.empty_table()
    order = pc.sort_indices(
        pa.table(
            {
                "id": keys[S.DOC_ID],
                "path": keys[S.PATH],
                "loc": pc.fill_null(keys[S.LOCATION], -1),
            }
        ),
        sort_keys=[("id", "ascending"), ("path", "ascending"), ("loc", "ascending")],
    )
    table = keys.take(order)
    ids = table[S.DOC_ID].to_numpy(zero_copy_only=False)
    starts = np.ones(len(ids), dtype=bool)
    starts[1:] = ids[1:] != ids[:-1]
    if starts.all():
        return LATER_SCHEMA.empty_table()
    index = np.arange(len(ids))
    first = np.maximum.accumulate(np.where(starts, index, 0))
    later = np.flatnonzero(~starts)
    return pa.table(
        {
            PART: table[PART].take(later),
            S.DOC_ID: table[S.DOC_ID].take(later),
            S.PATH: table[S.PATH].take(later),
            S.LOCATION: table[S.LOCATION].take(later),
            FIRST_PATH: table[S.PATH].take(first[later]),
            FIRST_LOCATION: table[S.LOCATION].take(first[later]),
        },
        schema=LATER_SCHEMA,
    )


def split_part(part: pa.Table, later: pa.Table) -> tuple[pa.Table, pa.Table]:
    """(kept documents, quarantined INGEST_SCHEMA rows) of one part, given its later rows."""
    where = {
        (p, loc): (fp, floc)
        for p, loc, fp, floc in zip(
            later[S.PATH].to_pylist(),
            later[S.LOCATION].to_pylist(),
            later[FIRST_PATH].to_pylist(),
            later[FIRST_LOCATION].to_pylist(),
            strict=True,
        )
    }
    keys = zip(part[S.PATH].to_pylist(), part[S.LOCATION].to_pylist(), strict=True)
    is_later = pa.array([key in where for key in keys], pa.bool_())
    moved = part.filter(is_later)
    firsts = [
        where[key]
        for key in zip(moved[S.PATH].to_pylist(), moved[S.LOCATION].to_pylist(), strict=True)
    ]
    details = [
        f"doc_id {doc_id!r} is taken by {fp}" + (f" at {floc}" if floc is not None else "")
        for doc_id, (fp, floc) in zip(moved[S.DOC_ID].to_pylist(), firsts, strict=True)
    ]
    quarantined = moved.select(S.DOCS_SCHEMA.names).cast(
        pa.schema([f.with_nullable(True) for f in S.DOCS_SCHEMA])
    )
    quarantined = pa.table(
        [
            *quarantined.columns,
            pa.array([Reason.DUPLICATE_ID] * moved.num_rows, pa.string()),
            pa.array(details, pa.string()),
            pc.utf8_slice_codeunits(moved[S.TEXT], 0, 200).cast(pa.string()),
        ],
        schema=S.INGEST_SCHEMA,
    )
    return part.filter(pc.invert(is_later)), quarantined


# --- on disk and on Ray -------------------------------------------------------------------


def _keys_of(part: Path) -> pa.Table:
    keys = pq.read_table(part, columns=KEY_COLUMNS)
    return keys.append_column(PART, pa.array([part.name] * keys.num_rows, pa.string()))


def _keys_batch(batch: pa.Table, scratch_dir: str) -> pa.Table:
    return pa.concat_tables([_keys_of(Path(scratch_dir) / n) for n in batch[PART].to_pylist()])


def rewrite_part(later: pa.Table, scratch_dir: str, data_dir: str, quarantine_dir: str):
    """One part's later rows (all of the same PART): write its data and quarantine files."""
    name = later[PART][0].as_py()
    kept, quarantined = split_part(pq.read_table(Path(scratch_dir) / name), later)
    with atomic_path(Path(quarantine_dir) / f"duplicate-{name}") as tmp:
        pq.write_table(quarantined, tmp, **PARQUET_OPTIONS)
    if kept.num_rows:
        with atomic_path(Path(data_dir) / name) as tmp:
            pq.write_table(kept.cast(S.DOCS_SCHEMA), tmp, **PARQUET_OPTIONS)
    counts = Counter(quarantined[S.SOURCE].to_pylist())
    sizes: Counter[str] = Counter()
    for source, n_bytes in zip(
        quarantined[S.SOURCE].to_pylist(), quarantined[S.N_BYTES].to_pylist(), strict=True
    ):
        sizes[source] += n_bytes
    return pa.table(
        {
            PART: [name] * len(counts),
            S.SOURCE: list(counts),
            "rows": [counts[s] for s in counts],
            "bytes": [sizes[s] for s in counts],
        },
        schema=MOVED_SCHEMA,
    )


def find_later_occurrences(
    scratch_dir: Path, driver_max_rows: int = DRIVER_CHECK_MAX_ROWS, partitions: int | None = None
) -> pa.Table | ray.data.Dataset:
    """The later occurrences: a table (small corpus) or a materialized Ray Dataset (grouped
    on doc_id in `partitions`, by default the cluster's default_partitions())."""
    parts = sorted(Path(scratch_dir).glob("*.parquet"))
    total = sum(pq.ParquetFile(p).metadata.num_rows for p in parts)
    if total <= driver_max_rows:
        keys = [_keys_of(p) for p in parts]
        return later_occurrences(pa.concat_tables(keys)) if keys else LATER_SCHEMA.empty_table()
    names = ray.data.from_items([{PART: p.name} for p in parts], override_num_blocks=len(parts))
    keys = names.map_batches(
        _keys_batch,
        batch_size=1,
        batch_format="pyarrow",
        fn_kwargs={"scratch_dir": str(scratch_dir)},
    )
    return (
        keys.groupby(S.DOC_ID, num_partitions=partitions or default_partitions())
        .map_groups(later_occurrences, batch_format="pyarrow")
        .materialize()
    )


def settle_duplicate_ids(
    scratch_dir: Path,
    data_dir: Path,
    quarantine_dir: Path,
    driver_max_rows: int = DRIVER_CHECK_MAX_ROWS,
    partitions: int | None = None,
) -> Moved:
    """Move the sink's parts from scratch_dir to data_dir, later occurrences to quarantine."""
    scratch_dir, data_dir = Path(scratch_dir), Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    later = find_later_occurrences(scratch_dir, driver_max_rows, partitions)
    if isinstance(later, pa.Table):
        later = ray.data.from_arrow(later) if later.num_rows else None
    elif later.count() == 0:
        later = None
    rewritten: set[str] = set()
    moved = Moved()
    if later is not None:
        results = (
            later.groupby(PART)
            .map_groups(
                rewrite_part,
                batch_format="pyarrow",
                fn_kwargs={
                    "scratch_dir": str(scratch_dir),
                    "data_dir": str(data_dir),
                    "quarantine_dir": str(quarantine_dir),
                },
            )
            .take_all()
        )
        by_source: Counter[str] = Counter()
        for row in results:
            rewritten.add(row[PART])
            by_source[row[S.SOURCE]] += row["rows"]
            moved.rows += row["rows"]
            moved.bytes += row["bytes"]
        moved.by_source = dict(sorted(by_source.items()))
    for part in sorted(scratch_dir.glob("*.parquet")):
        if part.name not in rewritten:
            os.replace(part, data_dir / part.name)
    return moved
