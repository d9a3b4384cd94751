"""Parts: tokenized rows parked on disk between encoding and writing, then read back
exactly: each shard's rows in shard order, each dropped row's quarantine record."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline import schema as S
from pipeline.tokens.batches import META_COLUMNS, QUARANTINE_KEPT_SCHEMA, tokenize_batch
from pipeline.tokens.inputs import as_input, plan_items
from pipeline.tokens.lineage import CARRIED
from pipeline.tokens.mixing import ORDER
from pipeline.tokens.parts import (
    PART,
    PART_COLUMNS,
    ROW,
    assemble_shards,
    encode_items,
    meta_schema,
    quarantine_rows,
    shard_recipes,
    take_rows,
    tokenize_to_part,
)
from pipeline.tokens.sink import FILE
from pipeline.tokens.tokenizers import spec_from_file

MISTRAL = "package:mistral_common/data/tokenizer.model.v1"


@pytest.fixture(scope="module")
def spec():
    return spec_from_file("sentencepiece", MISTRAL, "mistral-v1")


def inputs(n: int, first: int = 0) -> pa.Table:
    texts = [f"Document {i}: " + "word " * (i % 7 + 1) for i in range(first, first + n)]
    docs = pa.table(
        {
            S.DOC_ID: [f"web/{i}" for i in range(first, first + n)],
            S.SOURCE: ["web"] * n,
            S.TEXT: texts,
            S.N_BYTES: [len(t.encode()) for t in texts],
            S.PATH: ["/corpus/web.jsonl"] * n,
            S.LOCATION: list(range(first + 1, first + n + 1)),
        }
    )
    return as_input(docs, S.KIND_RAW)


def tokenized(batch: pa.Table, spec, seed: int) -> pa.Table:
    """The rows in one tokenizer call, with the lineage columns a part carries."""
    whole = tokenize_batch(batch, spec, "uint16", seed=seed)
    for column in CARRIED:
        whole = whole.append_column(column, batch[column])
    return whole


def test_a_part_holds_the_rows_and_the_driver_gets_their_meta(spec, tmp_path):
    batch = inputs(10)
    meta = tokenize_to_part(batch, spec, "uint16", seed=3, batch_rows=4, part_dir=str(tmp_path))
    whole = tokenized(batch, spec, seed=3)  # one tokenizer call, same rows
    assert meta.schema == meta_schema()
    assert meta.select(META_COLUMNS) == whole.select(META_COLUMNS)
    assert meta[ROW].to_pylist() == list(range(10))
    (name,) = set(meta[PART].to_pylist())
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no temporary left behind
    back = take_rows(tmp_path, [name] * 10, range(10), PART_COLUMNS)
    assert back == whole.select(PART_COLUMNS)
    assert back[S.LOCATION].to_pylist() == list(range(1, 11))  # lineage rides along


def test_an_empty_batch_writes_nothing(spec, tmp_path):
    meta = tokenize_to_part(inputs(0), spec, "uint16", seed=0, batch_rows=4, part_dir=str(tmp_path))
    assert meta.num_rows == 0 and meta.schema == meta_schema()
    assert not list(tmp_path.iterdir())


def two_parts(spec, tmp_path) -> tuple[pa.Table, list[str]]:
    """Meta of 11 rows in two parts, and each meta row's doc_id (meta keeps batch order)."""
    metas = [
        tokenize_to_part(batch, spec, "uint16", seed=0, batch_rows=8, part_dir=str(tmp_path))
        for batch in (inputs(6), inputs(5, first=6))
    ]
    return pa.concat_tables(metas), [f"web/{i}" for i in range(11)]


def test_each_shard_gets_exactly_its_rows_in_shard_order(spec, tmp_path):
    meta, ids = two_parts(spec, tmp_path)
    files = np.array(
        ["b.arrow", "", "a.arrow", "b.arrow", "a.arrow", "b.arrow"] + [""] * 4 + ["a.arrow"],
        dtype=object,
    )
    recipes = shard_recipes(files, meta[PART], meta[ROW])
    assert [r[FILE].to_pylist() for r in recipes] == [["a.arrow"], ["b.arrow"]]
    order = dict(zip(ids, meta[ORDER].to_pylist(), strict=True))
    for recipe in recipes:
        rows = assemble_shards(recipe, str(tmp_path))
        name = recipe[FILE][0].as_py()
        want = sorted((i for i, f in zip(ids, files, strict=True) if f == name), key=order.get)
        assert rows[S.DOC_ID].to_pylist() == want
        assert set(rows[FILE].to_pylist()) == {name}
        assert rows[ORDER].to_pylist() == sorted(rows[ORDER].to_pylist())
        assert all(
            len(t) == n
            for t, n in zip(rows[S.TOKENS].to_pylist(), rows[S.N_TOKENS].to_pylist(), strict=True)
        )
    assert shard_recipes(np.array([""] * len(ids), dtype=object), meta[PART], meta[ROW]) == []


def test_a_dropped_row_becomes_its_quarantine_record(spec, tmp_path):
    meta, ids = two_parts(spec, tmp_path)
    picked = [8, 1]
    drops = pa.table(
        {
            PART: meta[PART].take(picked),
            ROW: meta[ROW].take(picked),
            S.DROP_REASON: ["too_short", "empty"],
            S.DROP_DETAIL: ["short", "nothing"],
        }
    )
    records = quarantine_rows(drops, str(tmp_path))
    assert records.column_names == [*QUARANTINE_KEPT_SCHEMA.names, *S.DROP_COLUMNS]
    got = {r[S.DOC_ID]: r for r in records.to_pylist()}
    assert got[ids[8]][S.DROP_REASON] == "too_short" and got[ids[1]][S.DROP_DETAIL] == "nothing"
    assert got[ids[1]][S.SNIPPET].startswith("Document 1:")
    assert got[ids[8]][S.N_TOKENS] == meta[S.N_TOKENS][8].as_py()


def test_each_read_item_is_encoded_into_a_part_of_its_own(spec, tmp_path):
    source = tmp_path / "docs"
    source.mkdir()
    docs = inputs(40)
    pq.write_table(
        docs.select([S.DOC_ID, S.SOURCE, S.TEXT, S.N_BYTES, S.PATH, S.LOCATION]),
        source / "part-00000.parquet",
        row_group_size=25,
    )
    items = plan_items([(source, S.KIND_RAW)], cpus=2, min_bytes=300, max_bytes=10_000)
    assert len(items) > 2
    out = tmp_path / "parts"
    out.mkdir()
    meta = encode_items(pa.Table.from_pylist(items), spec, "uint16", 0, 8, str(out))
    assert meta.num_rows == 40 and len(set(meta[PART].to_pylist())) == len(items)
    assert sorted(p.name for p in out.iterdir()) == sorted(set(meta[PART].to_pylist()))
    whole = tokenized(docs, spec, seed=0)  # the same rows in one call
    by_order = {o: r for o, r in zip(whole[ORDER].to_pylist(), whole.to_pylist(), strict=True)}
    back = take_rows(out, meta[PART].to_pylist(), meta[ROW].to_pylist(), PART_COLUMNS)
    assert sorted(back[ORDER].to_pylist()) == sorted(by_order)
    for row in back.to_pylist():
        assert {c: row[c] for c in PART_COLUMNS} == {
            c: by_order[row[ORDER]][c] for c in PART_COLUMNS
        }
