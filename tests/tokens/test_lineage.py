"""The lineage table beside the shards: pairs with its shard row for row, deterministic bytes,
named in the manifest with its sha256, and any mismatch refused with the file named."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest
from test_manifest import TOKENIZER
from test_shards import rows_table

from pipeline import schema as S
from pipeline.plumbing.hashing import file_sha256
from pipeline.token_shards.files import write_shard
from pipeline.token_shards.manifest import (
    ManifestError,
    build_manifest,
    read_manifest,
    write_manifest,
)
from pipeline.tokens.lineage import (
    CARRIED,
    lineage_entry,
    lineage_file,
    read_lineage,
    verify_lineage,
    write_lineage,
)
from pipeline.tokens.mixing import PARENT_ID

SPANS = [{"index": 0, "start": 0, "end": 40}, {"index": 1, "start": 40, "end": 95}]


def shard_rows(token_lists) -> pa.Table:
    """Shard rows (rewrites at even indices, raw at odd) with the lineage columns a part has."""
    rows = rows_table(token_lists)
    n, rewrite = rows.num_rows, [i % 2 == 0 for i in range(rows.num_rows)]
    values = {
        PARENT_ID: [f"src/doc{i}" for i in range(n)],
        S.PATH: [None if r else "/corpus/src.jsonl" for r in rewrite],
        S.LOCATION: [None if r else i + 1 for i, r in enumerate(rewrite)],
        S.PROMPT_ID: ["qa@v1" if r else None for r in rewrite],
        S.PROMPT_HASH: ["0123456789ab" if r else None for r in rewrite],
        S.MODEL: ["smollm2-moe-e4-top2" if r else None for r in rewrite],
        S.MODEL_HASH: ["cd" * 32 if r else None for r in rewrite],
        S.SAMPLING: ['{"seed": 0}' if r else None for r in rewrite],
        S.CHUNK_SPANS: [SPANS if r else None for r in rewrite],
        S.CHUNK_ATTEMPTS: [[1, 3] if r else None for r in rewrite],
    }
    types = {f.name: f.type for f in S.LINEAGE_SCHEMA}
    for name in CARRIED:
        rows = rows.append_column(name, pa.array(values[name], types.get(name, pa.string())))
    return rows


def test_row_i_describes_row_i_and_the_bytes_depend_on_the_rows_alone(tmp_path):
    rows = shard_rows([[1, 5, 2], [1, 6, 7, 2], [1, 9, 2]])
    info = write_lineage(tmp_path / "a", "shard-00000.arrow", rows)
    assert info.file == lineage_file("shard-00000.arrow") == "lineage/shard-00000.parquet"
    assert info.rows == 3 and info.sha256 == file_sha256(tmp_path / "a" / info.file)
    assert [p.name for p in (tmp_path / "a" / "lineage").iterdir()] == ["shard-00000.parquet"]
    entry = lineage_entry([info])
    manifest = {
        "lineage": entry,
        "splits": {"train": {"shards": [{"file": info.shard, "rows": 3}]}},
    }
    table = read_lineage(tmp_path / "a", manifest, "shard-00000.arrow")
    assert table.schema == S.LINEAGE_SCHEMA
    lines = table.to_pylist()
    assert [line[S.DOC_ID] for line in lines] == rows[S.DOC_ID].to_pylist()
    assert lines[0][S.SOURCE_DOC_ID] == "src/doc0" and lines[0][S.CHUNK_SPANS] == SPANS
    assert (lines[0][S.PROMPT_ID], lines[0][S.MODEL_HASH], lines[0][S.PATH]) == (
        "qa@v1",
        "cd" * 32,
        None,
    )
    assert (lines[1][S.PATH], lines[1][S.LOCATION], lines[1][S.MODEL]) == (
        "/corpus/src.jsonl",
        2,
        None,
    )
    # The same rows in other chunks (as parts deliver them) give the same file.
    chunked = pa.concat_tables([rows.slice(0, 1), rows.slice(1)])
    again = write_lineage(tmp_path / "b", "shard-00000.arrow", chunked)
    assert again == info
    assert (tmp_path / "a" / info.file).read_bytes() == (tmp_path / "b" / info.file).read_bytes()


@pytest.fixture
def shard_dir(tmp_path):
    train, lineage = [], []
    for name, tokens in (
        ("shard-00000.arrow", [[1, 5, 2], [1, 6, 2]]),
        ("heldout-00000.arrow", [[1, 3, 2]]),
    ):
        rows = shard_rows(tokens)
        train.append(write_shard(tmp_path, name, rows, "uint16"))
        lineage.append(write_lineage(tmp_path, name, rows))
    manifest = build_manifest(
        tokenizer=TOKENIZER,
        token_dtype="uint16",
        splits={"train": train[:1], "heldout": train[1:]},
        totals={},
        mixture={},
        config={},
        lineage=lineage_entry(lineage),
    )
    write_manifest(tmp_path, manifest)
    return tmp_path


def test_the_manifest_names_each_lineage_file_with_its_sha256(shard_dir):
    manifest = read_manifest(shard_dir)
    files = manifest["lineage"]["files"]
    assert sorted(files) == ["heldout-00000.arrow", "shard-00000.arrow"]
    assert files["shard-00000.arrow"]["file"] == "lineage/shard-00000.parquet"
    assert files["shard-00000.arrow"]["sha256"] == file_sha256(
        shard_dir / "lineage" / "shard-00000.parquet"
    )
    assert manifest["lineage"]["columns"] == S.LINEAGE_SCHEMA.names
    verify_lineage(shard_dir, manifest)


def test_a_changed_or_missing_lineage_file_is_refused(shard_dir):
    manifest = read_manifest(shard_dir)
    path = shard_dir / "lineage" / "heldout-00000.parquet"
    data = bytearray(path.read_bytes())
    data[10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ManifestError, match=r"heldout-00000\.parquet"):
        read_lineage(shard_dir, manifest, "heldout-00000.arrow")
    verify_lineage(shard_dir, manifest, "shard-00000.arrow")  # the other one is fine
    path.unlink()
    with pytest.raises(ManifestError, match="missing"):
        verify_lineage(shard_dir, manifest)
    older = {k: v for k, v in manifest.items() if k != "lineage"}
    with pytest.raises(ManifestError, match="no lineage"):
        verify_lineage(shard_dir, older)


def test_a_lineage_block_that_does_not_match_the_shards_is_refused(shard_dir):
    path = shard_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    read_manifest(shard_dir)
    wrong = json.loads(json.dumps(manifest))
    del wrong["lineage"]["files"]["heldout-00000.arrow"]
    path.write_text(json.dumps(wrong))
    with pytest.raises(ManifestError, match=r"lineage\.files"):
        read_manifest(shard_dir)
    wrong = json.loads(json.dumps(manifest))
    wrong["lineage"]["files"]["shard-00000.arrow"]["file"] = "../elsewhere.parquet"
    path.write_text(json.dumps(wrong))
    with pytest.raises(ManifestError, match="relative file name"):
        read_manifest(shard_dir)
    del manifest["lineage"]  # a manifest from before lineage tables still reads
    path.write_text(json.dumps(manifest))
    assert "lineage" not in read_manifest(shard_dir)
