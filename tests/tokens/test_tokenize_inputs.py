"""Reading the tokenize stage's input: read items planned from the row sizes (guided: large
first, shrinking), read back exactly, and DOCS / REWRITES columns on one input schema."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute
import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline import schema as S
from pipeline.tokens.inputs import INPUT_SCHEMA, as_input, guided_cuts, plan_items, read_item
from pipeline.tokens.lineage import CARRIED
from pipeline.tokens.mixing import PARENT_ID


def test_items_shrink_as_the_text_runs_out_and_never_cross_a_row_group():
    sizes = [np.full(60, 10), np.full(14, 100)]  # 2000 bytes in two row groups
    cuts = guided_cuts(sizes, cpus=1, min_bytes=50, max_bytes=10_000)
    # Each takes half the unplanned text (GUIDE x 1 CPU), down to min_bytes; the first is
    # cut short by its row group's end.
    assert cuts == [
        (0, 0, 60, 600),
        (1, 0, 7, 700),
        (1, 7, 11, 400),
        (1, 11, 13, 200),
        (1, 13, 14, 100),
    ]
    assert guided_cuts(sizes, cpus=1, min_bytes=50, max_bytes=300)[0] == (0, 0, 30, 300)


@settings(max_examples=200, deadline=None)
@given(
    groups=st.lists(st.lists(st.integers(0, 500), max_size=40), max_size=4),
    cpus=st.integers(1, 8),
    min_bytes=st.integers(1, 600),
    extra=st.integers(0, 2000),
)
def test_every_row_is_in_exactly_one_item(groups, cpus, min_bytes, extra):
    cuts = guided_cuts(
        [np.array(g, dtype=np.int64) for g in groups], cpus, min_bytes, min_bytes + extra
    )
    for g, sizes in enumerate(groups):
        ranges = [(start, stop) for group, start, stop, _ in cuts if group == g]
        covered = [i for start, stop in ranges for i in range(start, stop)]
        assert covered == list(range(len(sizes)))  # in order, once each
        for start, stop in ranges:
            assert stop > start
            # An item ends at the row that reaches its target, or at its group's end.
            assert stop == len(sizes) or sum(sizes[start:stop]) >= min_bytes
            assert sum(sizes[start : stop - 1]) < min_bytes + extra
    assert sum(c[3] for c in cuts) == sum(map(sum, groups))


def test_items_read_back_exactly_their_rows_largest_first(tmp_path):
    texts = [f"doc {i} " + "x" * (i * 37 % 500) for i in range(700)]
    table = pa.table(
        {
            S.DOC_ID: [f"web/{i}" for i in range(700)],
            S.SOURCE: ["web"] * 700,
            S.TEXT: texts,
            S.N_BYTES: [len(t.encode()) for t in texts],
        }
    )
    pq.write_table(table, tmp_path / "part-00000.parquet", row_group_size=300)
    items = plan_items([(tmp_path, S.KIND_RAW)], cpus=2, min_bytes=5_000, max_bytes=40_000)
    assert len(items) > 6 and {i["row_group"] for i in items} == {0, 1, 2}
    sizes = [i["bytes"] for i in items]
    assert sizes == sorted(sizes, reverse=True)
    rows = pa.concat_tables(read_item(item) for item in items)
    assert rows.schema == INPUT_SCHEMA
    assert sorted(rows[S.DOC_ID].to_pylist()) == sorted(table[S.DOC_ID].to_pylist())
    got = dict(zip(rows[S.DOC_ID].to_pylist(), rows[S.TEXT].to_pylist(), strict=True))
    assert got == dict(zip(table[S.DOC_ID].to_pylist(), texts, strict=True))
    for item in items:
        assert int(pa.compute.sum(read_item(item)[S.N_BYTES]).as_py()) == item["bytes"]
    assert plan_items([], cpus=2) == []


def test_docs_and_rewrites_share_one_input_schema():
    docs = pa.table({S.DOC_ID: ["web/1"], S.SOURCE: ["web"], S.TEXT: ["Hello."], S.N_BYTES: [6]})
    raw = as_input(docs, S.KIND_RAW)
    assert raw.schema == INPUT_SCHEMA
    no_lineage = {c: None for c in CARRIED if c != PARENT_ID}  # an input without them: nulls
    assert raw.to_pylist() == [
        {
            S.DOC_ID: "web/1",
            PARENT_ID: "web/1",
            S.SOURCE: "web",
            S.KIND: "raw",
            S.STYLE: None,
            S.TEXT: "Hello.",
            S.N_BYTES: 6,
            **no_lineage,
        }
    ]
    located = docs.append_column(S.PATH, pa.array(["/in/web.jsonl"])).append_column(
        S.LOCATION, pa.array([3], pa.int64())
    )
    row = as_input(located, S.KIND_RAW).to_pylist()[0]
    assert (row[S.PATH], row[S.LOCATION], row[S.PROMPT_ID]) == ("/in/web.jsonl", 3, None)
    rewrites = pa.table(
        {
            S.REWRITE_ID: ["web/1#qa"],
            S.DOC_ID: ["web/1"],
            S.SOURCE: ["web"],
            S.STYLE: ["qa"],
            S.PROMPT_ID: ["qa@v1"],
            S.MODEL_HASH: ["ab" * 32],
            S.PATH: ["ignored: a rewrite's path is its document's"],
            S.TEXT: ["Q: hi? A: Hello."],
            S.N_BYTES: [16],
        }
    )
    row = as_input(rewrites, S.KIND_REWRITE).to_pylist()[0]
    assert (row[S.DOC_ID], row[PARENT_ID], row[S.KIND], row[S.STYLE]) == (
        "web/1#qa",
        "web/1",
        "rewrite",
        "qa",
    )
    assert (row[S.PROMPT_ID], row[S.MODEL_HASH], row[S.MODEL], row[S.PATH]) == (
        "qa@v1",
        "ab" * 32,
        None,
        None,
    )
