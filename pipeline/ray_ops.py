"""Small Ray Data building blocks the stages share: reading stage outputs, counting rows from
Parquet metadata, and `cogroup`, a reduce-side join that needs nothing beyond groupby.

    docs = read_parts(run_dir / "ingest" / "data", schema.DOCS_SCHEMA)
    n = count_rows(run_dir / "ingest" / "data")
    joined = cogroup({"docs": (docs, "doc_id", DOCS_SCHEMA),
                      "marks": (marks, "doc_id", MARKS_SCHEMA)}, combine, num_partitions=8)

Why cogroup and not `Dataset.join`: Ray's join needs polars and aggregator actors; a groupby on
a tagged union is the textbook reduce-side join, shuffles the same bytes, and keeps every
group's rows together in one task, so memory per worker is bounded by the largest group.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import ray

KEY = "_key"
SIDE = "_side"


def parquet_parts(directory: Path) -> list[str]:
    return sorted(str(p) for p in Path(directory).glob("*.parquet"))


def read_parts(directory: Path, schema: pa.Schema | None) -> ray.data.Dataset:
    """A stage's Parquet output as a Dataset; an empty one (with schema) if it wrote nothing.
    schema=None reads the files' own schema (they must exist)."""
    parts = parquet_parts(directory)
    if not parts and schema is not None:
        return ray.data.from_arrow(schema.empty_table())
    return ray.data.read_parquet(parts, schema=schema)


def count_rows(directory: Path) -> int:
    """Rows in a directory of Parquet parts, from the footers alone (no data read)."""
    return sum(pq.ParquetFile(p).metadata.num_rows for p in parquet_parts(directory))


def sum_column(directory: Path, column: str) -> int:
    """Sum of an integer column over a directory of Parquet parts, reading that column only."""
    return sum(
        pc.sum(pq.read_table(p, columns=[column])[column]).as_py() or 0
        for p in parquet_parts(directory)
    )


def count_non_null(directory: Path, column: str) -> int:
    """Rows of a directory of Parquet parts whose `column` is set, reading that column only."""
    total = 0
    for part in parquet_parts(directory):
        values = pq.read_table(part, columns=[column])[column]
        total += len(values) - values.null_count
    return total


def write_parts(ds: ray.data.Dataset, directory: Path) -> None:
    Path(directory).mkdir(parents=True, exist_ok=True)
    ds.write_parquet(str(directory), compression="zstd")


def cogroup(
    sides: Mapping[str, tuple[ray.data.Dataset, str, pa.Schema]],
    combine: Callable[..., pa.Table],
    num_partitions: int,
    fn_kwargs: dict | None = None,
) -> ray.data.Dataset:
    """Group several datasets by a key column each and call `combine` once per key.

    `sides` maps a side name to (dataset, key column, schema). `combine` gets {side: rows of
    that side with this key, in that side's schema} (an empty table for a side without rows)
    (plus `fn_kwargs`) and returns a table; all returned tables must share a schema.
    """
    union_schema = pa.schema(
        [pa.field(KEY, pa.string()), pa.field(SIDE, pa.string())]
        + [
            pa.field(f"{name}.{field.name}", field.type)
            for name, (_, _, schema) in sides.items()
            for field in schema
        ]
    )
    tagged = [
        ds.map_batches(
            _tag,
            batch_format="pyarrow",
            fn_kwargs={"side": name, "key": key, "schema": schema, "union_schema": union_schema},
        )
        for name, (ds, key, schema) in sides.items()
    ]
    union = tagged[0].union(*tagged[1:]) if len(tagged) > 1 else tagged[0]
    schemas = {name: schema for name, (_, _, schema) in sides.items()}
    return union.groupby(KEY, num_partitions=num_partitions).map_groups(
        _untag_and_combine,
        batch_format="pyarrow",
        fn_kwargs={"schemas": schemas, "combine": combine, "kwargs": fn_kwargs or {}},
    )


def _tag(batch: pa.Table, side: str, key: str, schema: pa.Schema, union_schema: pa.Schema):
    n = batch.num_rows
    columns = {KEY: batch[key].cast(pa.string()), SIDE: pa.array([side] * n, pa.string())}
    for field in union_schema:
        if field.name in columns:
            continue
        owner, _, column = field.name.partition(".")
        if owner == side:
            columns[field.name] = batch[column].cast(field.type)
        else:
            columns[field.name] = pa.nulls(n, field.type)
    return pa.table(columns, schema=union_schema)


def _untag_and_combine(
    group: pa.Table, schemas: dict[str, pa.Schema], combine, kwargs: dict
) -> pa.Table:
    parts = {}
    for name, schema in schemas.items():
        rows = group.filter(pc.equal(group[SIDE], name))
        parts[name] = pa.table({f.name: rows[f"{name}.{f.name}"] for f in schema}, schema=schema)
    return combine(parts, **kwargs)
