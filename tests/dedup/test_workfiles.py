"""Dedup work files: units cover the input exactly once; partitions hold every row once."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.dedup.workfiles import (
    partition_of,
    plan_units,
    read_partition,
    read_unit,
    write_partitioned,
)


def test_units_group_small_row_groups_and_slice_large_ones(tmp_path):
    table = pa.table({"x": list(range(100))})
    pq.write_table(table, tmp_path / "a.parquet", row_group_size=10)
    pq.write_table(table.slice(0, 50), tmp_path / "b.parquet", row_group_size=50)
    units = plan_units(tmp_path, unit_rows=25)
    assert [u.rows for u in units] == [20, 20, 20, 20, 20, 25, 25]
    assert [u.start for u in units] == [0, 20, 40, 60, 80, 100, 125]
    rows = [x for u in units for x in read_unit(u, ["x"])["x"].to_pylist()]
    assert rows == list(range(100)) + list(range(50))
    assert plan_units(tmp_path / "nothing", 25) == []


def test_partitions_hold_every_row_once(tmp_path):
    keys = np.arange(0, 800, 8, dtype=np.uint64)  # low bits all zero, like anchors
    table = pa.table({"key": keys, "idx": np.arange(len(keys))})
    parts = partition_of(keys, 4)
    assert len(set(parts.tolist())) == 4  # high bits spread keys that low bits cannot
    for name in ("a", "b"):
        write_partitioned(tmp_path / f"{name}.arrow", table, parts, 4)
    files = [tmp_path / "a.arrow", tmp_path / "b.arrow"]
    seen = [read_partition(files, p, table.schema)["idx"].to_pylist() for p in range(4)]
    assert sorted(i for part in seen for i in part) == sorted(list(range(len(keys))) * 2)
    for p, part in enumerate(seen):
        assert all(parts[i] == p for i in part)
