"""Shard writer: schema, dtype choice, canonical bytes, sha256, cutting rows into shards."""

from __future__ import annotations

import hashlib
import itertools

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline import schema as S
from pipeline.token_shards.files import (
    ShardInfo,
    open_shard,
    shard_file_name,
    shard_starts,
    shard_table,
    token_dtype_for,
    write_shard,
)


def rows_table(token_lists, list_type=None) -> pa.Table:
    n = len(token_lists)
    list_type = list_type or pa.list_(pa.int64())
    return pa.table(
        {
            S.DOC_ID: [f"src/d{i}" for i in range(n)],
            S.SOURCE: ["src"] * n,
            S.KIND: [S.KIND_RAW if i % 2 else S.KIND_REWRITE for i in range(n)],
            S.STYLE: [None if i % 2 else "qa" for i in range(n)],
            S.TOKENS: pa.array(token_lists, list_type),
        }
    )


def test_dtype_follows_the_vocabulary_size():
    assert token_dtype_for(32000) == "uint16"
    assert token_dtype_for(65536) == "uint16"  # ids 0..65535
    assert token_dtype_for(65537) == "uint32"
    assert token_dtype_for(151_936) == "uint32"
    with pytest.raises(ValueError):
        token_dtype_for(0)


def test_names_are_deterministic_per_split():
    assert shard_file_name("train", 0) == "shard-00000.arrow"
    assert shard_file_name("heldout", 12) == "heldout-00012.arrow"
    with pytest.raises(ValueError, match="unknown split"):
        shard_file_name("valid", 0)


@pytest.mark.parametrize("dtype", ["uint16", "uint32"])
def test_written_shard_has_the_contract_schema_and_its_sha256(tmp_path, dtype):
    lists = [[1, 2, 3], [65535, 0], [7]]
    info = write_shard(tmp_path, "shard-00000.arrow", rows_table(lists), dtype)
    path = tmp_path / "shard-00000.arrow"
    assert info == ShardInfo(
        file="shard-00000.arrow",
        rows=3,
        tokens=6,
        bytes=path.stat().st_size,
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
    )
    assert [p.name for p in tmp_path.iterdir()] == ["shard-00000.arrow"]  # no temp file left
    assert path.read_bytes()[:6] == b"ARROW1"  # IPC *file* format (the stream has no magic)
    reader = pa.ipc.open_file(pa.memory_map(str(path)))
    assert reader.num_record_batches == 1
    assert reader.schema.equals(S.token_shard_schema(dtype))
    table = open_shard(path)
    assert table[S.TOKENS].to_pylist() == lists
    assert table[S.N_TOKENS].to_pylist() == [3, 2, 1]
    assert table[S.STYLE].to_pylist() == ["qa", None, "qa"]
    values = table[S.TOKENS].chunk(0).values.to_numpy()
    assert values.dtype == np.dtype(dtype) and values.tolist() == [1, 2, 3, 65535, 0, 7]
    assert table[S.TOKENS].chunk(0).offsets.to_pylist() == [0, 3, 5, 6]


def test_the_shard_is_uncompressed_and_read_without_copying(tmp_path):
    lists = [list(range(1000))] * 20
    write_shard(tmp_path, "s.arrow", rows_table(lists), "uint16")
    path = tmp_path / "s.arrow"
    assert path.stat().st_size > 20 * 1000 * 2  # 40 kB of raw uint16 tokens are all there
    before = pa.total_allocated_bytes()
    table = open_shard(path)
    values = table[S.TOKENS].chunk(0).values.to_numpy()
    assert int(values.sum()) == 20 * sum(range(1000))
    assert pa.total_allocated_bytes() - before < 4096  # memory-mapped: nothing allocated


def test_same_rows_give_the_same_bytes_whatever_the_input_layout(tmp_path):
    lists = [[5, 6], [7], [8, 9, 10], [11]]
    plain = rows_table(lists)
    # Chunked, sliced, large_list of uint32 with an all-valid bitmap: same rows, other buffers.
    chunked = pa.concat_tables([rows_table([*lists[:1], [99]]).slice(0, 1), plain.slice(1)])
    chunked = chunked.set_column(
        chunked.schema.get_field_index(S.TOKENS),
        S.TOKENS,
        chunked[S.TOKENS].cast(pa.large_list(pa.uint32())),
    )
    chunked = chunked.set_column(
        chunked.schema.get_field_index(S.DOC_ID),
        S.DOC_ID,
        chunked[S.DOC_ID].cast(pa.large_string()),
    )
    a = write_shard(tmp_path / "a", "shard-00000.arrow", plain, "uint16")
    b = write_shard(tmp_path / "b", "shard-00000.arrow", chunked, "uint16")
    assert a == b
    assert (tmp_path / "a" / a.file).read_bytes() == (tmp_path / "b" / b.file).read_bytes()


def test_bad_tables_are_refused_with_the_problem(tmp_path):
    with pytest.raises(ValueError, match="do not fit uint16"):
        write_shard(tmp_path, "s.arrow", rows_table([[70000]]), "uint16")
    with pytest.raises(ValueError, match="at least one row"):
        write_shard(tmp_path, "s.arrow", rows_table([]), "uint16")
    bad = rows_table([[1, 2]]).append_column(S.N_TOKENS, pa.array([3], pa.int32()))
    with pytest.raises(ValueError, match="n_tokens differs"):
        shard_table(bad, "uint16")
    with pytest.raises(ValueError, match="null token list"):
        shard_table(rows_table([[1], None]), "uint16")
    assert list(tmp_path.iterdir()) == []


def test_shards_close_before_the_target_is_passed():
    assert shard_starts([], 10) == []
    assert shard_starts([4, 4, 4, 4], 8) == [0, 2]
    assert shard_starts([4, 4, 4, 4], 9) == [0, 2]
    assert shard_starts([20, 1, 1], 8) == [0, 1]  # a large row gets a shard of its own
    assert shard_starts([4, 4, 4, 4], 8, keys=[1, 2, 2, 3]) == [0, 3]  # equal keys stay together


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(1, 50), max_size=60),
    st.integers(1, 120),
    st.lists(st.integers(0, 5), max_size=60),
)
def test_every_row_lands_in_exactly_one_shard(n_tokens, target, key_steps):
    keys = np.cumsum(key_steps[: len(n_tokens)] + [1] * (len(n_tokens) - len(key_steps)))
    keys = keys.tolist()
    starts = shard_starts(n_tokens, target, keys)
    bounds = [*starts, len(n_tokens)]
    pieces = [n_tokens[a:b] for a, b in itertools.pairwise(bounds)]
    assert [n for piece in pieces for n in piece] == n_tokens
    for a, b in itertools.pairwise(bounds):
        tie_inside = any(keys[i] == keys[i - 1] for i in range(a + 1, b))
        assert b - a >= 1
        assert sum(n_tokens[a:b]) <= target or b - a == 1 or tie_inside
        if a > 0:
            assert keys[a] != keys[a - 1]  # no cut between equal keys
