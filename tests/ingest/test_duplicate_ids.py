"""Duplicate doc ids: the first occurrence by (path, location) keeps the id, later ones are
quarantined as duplicate_id; the driver check and the distributed groupby agree."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline import schema as S
from pipeline.ingest.duplicate_ids import (
    FIRST_LOCATION,
    FIRST_PATH,
    PART,
    later_occurrences,
    settle_duplicate_ids,
    split_part,
)
from pipeline.ingest.readers import Reason


def keys(*rows: tuple) -> pa.Table:
    part, doc_id, path, location = zip(*rows, strict=True)
    return pa.table(
        {
            S.DOC_ID: pa.array(doc_id, pa.string()),
            S.PATH: pa.array(path, pa.string()),
            S.LOCATION: pa.array(location, pa.int64()),
            PART: pa.array(part, pa.string()),
        }
    )


def test_unique_ids_have_no_later_occurrences():
    assert later_occurrences(keys(("p0", "s/a", "f", 1), ("p0", "s/b", "f", 2))).num_rows == 0
    assert later_occurrences(keys(("p0", "s/a", "f", 1))).num_rows == 0


def test_first_by_path_then_location_whatever_the_input_order():
    rows = [
        ("p1", "s/x", "b.jsonl", 1),
        ("p0", "s/x", "a.jsonl", 9),
        ("p0", "s/x", "a.jsonl", 3),
        ("p2", "s/y", "c.jsonl", 5),
    ]
    for order in (rows, rows[::-1]):
        later = later_occurrences(keys(*order)).to_pylist()
        assert sorted((r[S.PATH], r[S.LOCATION]) for r in later) == [
            ("a.jsonl", 9),
            ("b.jsonl", 1),
        ]
        assert {(r[FIRST_PATH], r[FIRST_LOCATION]) for r in later} == {("a.jsonl", 3)}


def test_a_null_location_sorts_first():
    later = later_occurrences(keys(("p0", "s/x", "f", 2), ("p0", "s/x", "f", None)))
    assert later.to_pylist()[0][S.LOCATION] == 2


def docs(path: str, *records: tuple[str, int, str]) -> pa.Table:
    return pa.Table.from_pylist(
        [
            {
                S.DOC_ID: doc_id,
                S.SOURCE: "s",
                S.TEXT: text,
                S.WEIGHT: 1.0,
                S.PATH: path,
                S.LOCATION: loc,
                S.N_BYTES: len(text),
                S.NORMALIZED: [],
            }
            for doc_id, loc, text in records
        ],
        schema=S.DOCS_SCHEMA,
    )


def test_split_part_moves_later_rows_with_reason_detail_and_snippet():
    part = docs("b.jsonl", ("s/x", 1, "later x"), ("s/z", 2, "unique z"))
    later = later_occurrences(
        keys(("p1", "s/x", "b.jsonl", 1), ("p0", "s/x", "a.jsonl", 4), ("p1", "s/z", "b.jsonl", 2))
    )
    kept, moved = split_part(part, later)
    assert kept[S.DOC_ID].to_pylist() == ["s/z"]
    assert moved.schema == S.INGEST_SCHEMA
    (row,) = moved.to_pylist()
    assert row[S.DROP_REASON] == Reason.DUPLICATE_ID
    assert row[S.DROP_DETAIL] == "doc_id 's/x' is taken by a.jsonl at 4"
    assert (row[S.TEXT], row[S.SNIPPET]) == ("later x", "later x")


def write_parts(directory, *tables):
    directory.mkdir(parents=True)
    for i, table in enumerate(tables):
        pq.write_table(table, directory / f"part-{i:05d}.parquet")


@pytest.mark.parametrize("driver_max_rows", [1_000_000, 0], ids=["driver", "distributed"])
def test_settle_moves_parts_and_quarantines_later_rows(ray_local, tmp_path, driver_max_rows):
    scratch, data, quarantine = tmp_path / "scratch", tmp_path / "data", tmp_path / "q"
    write_parts(
        scratch,
        docs("a.jsonl", ("s/x", 1, "first x"), ("s/y", 2, "y")),
        docs("b.jsonl", ("s/x", 1, "second x"), ("s/x", 2, "third x"), ("s/w", 3, "w")),
        docs("c.jsonl", ("s/v", 1, "v")),
    )
    moved = settle_duplicate_ids(scratch, data, quarantine, driver_max_rows=driver_max_rows)
    assert (moved.rows, moved.by_source, moved.bytes) == (2, {"s": 2}, len("second xthird x"))
    kept = pq.read_table(data).to_pylist()
    assert sorted(r[S.TEXT] for r in kept) == ["first x", "v", "w", "y"]
    dropped = pq.read_table(quarantine).to_pylist()
    assert sorted(r[S.TEXT] for r in dropped) == ["second x", "third x"]
    assert not list(scratch.glob("*.parquet")) or all(
        p.name == "part-00001.parquet" for p in scratch.glob("*.parquet")
    )
    assert pq.read_schema(data / "part-00001.parquet") == S.DOCS_SCHEMA


def test_settle_without_duplicates_just_moves_the_parts(ray_local, tmp_path):
    scratch, data, quarantine = tmp_path / "scratch", tmp_path / "data", tmp_path / "q"
    write_parts(scratch, docs("a.jsonl", ("s/x", 1, "x")), docs("b.jsonl", ("s/y", 1, "y")))
    assert settle_duplicate_ids(scratch, data, quarantine).rows == 0
    assert sorted(p.name for p in data.iterdir()) == ["part-00000.parquet", "part-00001.parquet"]
    assert not quarantine.exists() and not list(scratch.iterdir())
