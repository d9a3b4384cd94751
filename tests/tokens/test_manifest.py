"""Manifest: round trip, and every kind of mismatch is refused with a message naming it."""

from __future__ import annotations

import json

import pytest
from test_shards import rows_table

from pipeline.token_shards.files import write_shard
from pipeline.token_shards.manifest import (
    ManifestError,
    build_manifest,
    load_manifest,
    read_manifest,
    write_manifest,
)

TOKENIZER = {
    "kind": "sentencepiece",
    "name": "test-spm",
    "sha256": "ab" * 32,
    "vocab_size": 32000,
    "bos_id": 1,
    "eos_id": 2,
    "pad_id": None,
    "add_bos": True,
    "add_eos": True,
}


@pytest.fixture
def shard_dir(tmp_path):
    train = [
        write_shard(tmp_path, "shard-00000.arrow", rows_table([[1, 5, 2], [1, 6, 7, 2]]), "uint16"),
        write_shard(tmp_path, "shard-00001.arrow", rows_table([[1, 9, 2]]), "uint16"),
    ]
    heldout = [write_shard(tmp_path, "heldout-00000.arrow", rows_table([[1, 3, 2]]), "uint16")]
    manifest = build_manifest(
        tokenizer=TOKENIZER,
        token_dtype="uint16",
        splits={"train": train, "heldout": heldout},
        totals={"by_source": {"src": {"documents": 4, "tokens": 13}}},
        mixture={"rewrite_share": None},
        config={"shards": {"target_tokens": 8}},
    )
    write_manifest(tmp_path, manifest)
    return tmp_path


def test_round_trip(shard_dir):
    m = load_manifest(shard_dir, tokenizer_sha256="ab" * 32)
    assert m.token_dtype == "uint16" and m.tokenizer["eos_id"] == 2
    assert [p.name for p in m.paths("train")] == ["shard-00000.arrow", "shard-00001.arrow"]
    assert m.documents("train") == 3 and m.tokens("train") == 10
    assert m.documents("heldout") == 1 and m.tokens("heldout") == 3
    text = (shard_dir / "manifest.json").read_text()
    write_manifest(shard_dir, m.data)  # same content, same bytes
    assert (shard_dir / "manifest.json").read_text() == text


def test_a_flipped_byte_is_caught_by_sha256(shard_dir):
    path = shard_dir / "shard-00001.arrow"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ManifestError, match=r"shard-00001\.arrow: sha256 .* corrupted"):
        load_manifest(shard_dir)
    load_manifest(shard_dir, verify=False)  # same size: only the hash can tell


def test_a_missing_or_truncated_shard_is_named(shard_dir):
    path = shard_dir / "heldout-00000.arrow"
    path.write_bytes(path.read_bytes()[:-8])
    with pytest.raises(ManifestError, match=r"heldout-00000\.arrow: \d+ bytes on disk"):
        load_manifest(shard_dir, verify=False)
    path.unlink()
    with pytest.raises(ManifestError, match=r"heldout-00000\.arrow: listed .* but missing"):
        load_manifest(shard_dir)


def test_a_wrong_tokenizer_hash_is_refused(shard_dir):
    with pytest.raises(ManifestError, match=r"tokenizer\.sha256: .*'test-spm'"):
        load_manifest(shard_dir, tokenizer_sha256="cd" * 32)


def test_no_manifest_means_an_unfinished_directory(tmp_path):
    with pytest.raises(ManifestError, match=r"no manifest .* did it finish"):
        load_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ManifestError, match="not valid JSON"):
        read_manifest(tmp_path)


def edit(shard_dir, change) -> None:
    path = shard_dir / "manifest.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m.update(format_version=2), "format_version: 2 is not supported"),
        (lambda m: m.pop("splits"), "splits: missing"),
        (lambda m: m["tokenizer"].update(kind="tiktoken"), "tokenizer.kind"),
        (lambda m: m["tokenizer"].update(sha256="xyz"), "tokenizer.sha256"),
        (lambda m: m["tokenizer"].update(eos_id=40000), "tokenizer.eos_id"),
        (lambda m: m["tokenizer"].update(vocab_size=100_000), "token_dtype: uint16 cannot"),
        (lambda m: m.update(token_dtype="int8"), "token_dtype"),
        (lambda m: m["splits"]["train"]["shards"][0].update(file="../x.arrow"), r"shards\[0\]"),
        (lambda m: m["splits"]["train"]["shards"][1].update(rows=-1), r"shards\[1\]\.rows"),
        (lambda m: m["splits"]["heldout"].update(tokens=4), r"splits\.heldout\.tokens"),
        (
            lambda m: m["splits"]["heldout"]["shards"].append(m["splits"]["train"]["shards"][0]),
            "listed twice",
        ),
    ],
)
def test_structure_errors_name_the_field(shard_dir, change, message):
    edit(shard_dir, change)
    with pytest.raises(ManifestError, match=message):
        load_manifest(shard_dir)


def test_a_shard_of_another_dtype_is_refused(shard_dir):
    info = write_shard(shard_dir, "shard-00001.arrow", rows_table([[1, 9, 2]]), "uint32")

    def swap(m):
        m["splits"]["train"]["shards"][1] = info.to_dict()
        m["splits"]["train"]["tokens"] = 10

    edit(shard_dir, swap)
    with pytest.raises(ManifestError, match=r"shard-00001\.arrow: schema"):
        load_manifest(shard_dir)


def test_a_file_that_is_not_arrow_is_refused(shard_dir):
    path = shard_dir / "shard-00000.arrow"
    size = path.stat().st_size
    path.write_bytes(b"\0" * size)
    with pytest.raises(ManifestError, match="not an Arrow IPC file"):
        load_manifest(shard_dir, verify=False)
