"""The tokenize stage on Ray: ingest -> tokenize, accounting, manifest, byte-identical reruns,
rewrites mixed in, and the shards read by HF datasets."""

from __future__ import annotations

import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import make_config, write_jsonl
from rewrite_rows import MODEL, MODEL_HASH, SAMPLING, chunk_spans, fake_rewrites

from pipeline import runner
from pipeline import schema as S
from pipeline.config import SourceConfig
from pipeline.plumbing.hashing import file_sha256
from pipeline.rewrite.prompts import get_template
from pipeline.stage import DOCS, REWRITES, RunContext
from pipeline.token_shards.files import open_shard
from pipeline.token_shards.manifest import load_manifest
from pipeline.tokens import inputs
from pipeline.tokens import stage as stage_module
from pipeline.tokens.lineage import read_lineage, verify_lineage
from pipeline.tokens.parts import PART, PARTS_DIR
from pipeline.tokens.stage import TokenizeStage
from pipeline.tokens.steps import encode
from pipeline.tokens.tokenizers import TokenizerSpec, load_tokenizer

WORDS = [
    "the",
    "a",
    "of",
    "river",
    "city",
    "court",
    "music",
    "light",
    "stone",
    "north",
    "winter",
    "paper",
    "garden",
    "law",
]


def text(rng: random.Random, n_words: int) -> str:
    sentences = []
    for _ in range(max(1, n_words // 8)):
        sentences.append(" ".join(rng.choice(WORDS) for _ in range(8)).capitalize() + ".")
    return " ".join(sentences) + f" Number {rng.randint(0, 9999)}."


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict:
    rng = random.Random(0)
    root = tmp_path_factory.mktemp("tok_corpus")
    web = [{"id": f"w{i}", "text": text(rng, rng.randint(24, 120))} for i in range(60)]
    web.append({"id": "tiny", "text": "Hi."})  # fewer than min_tokens
    books = [{"id": f"b{i}", "text": text(rng, rng.randint(40, 200))} for i in range(20)]
    return {
        "web": SourceConfig(paths=[str(write_jsonl(root / "web.jsonl", web))]),
        "books": SourceConfig(paths=[str(write_jsonl(root / "books.jsonl", books))], weight=2.0),
    }


def tokenize_run(corpus, run_dir: Path, **shards):
    config = make_config(corpus, stages=("ingest", "tokenize"))
    config.tokenizer.train = True
    config.tokenizer.train_vocab_size = 400
    config.tokenizer.batch_rows = 16
    config.shards.target_tokens = 600
    config.shards.heldout_fraction = 0.05
    for key, value in shards.items():
        setattr(config.shards, key, value)
    return runner.run_pipeline(config, run_dir).stages[-1]


def files(directory: Path) -> dict[str, bytes]:
    """Every file under `directory` (the lineage tables in lineage/ included) by its path."""
    return {
        p.relative_to(directory).as_posix(): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def check_lineage(data: Path, manifest) -> list[dict]:
    """Each shard's lineage file is named in the manifest with its sha256 and pairs with the
    shard row for row; returns every lineage row."""
    assert set(manifest.data["lineage"]["files"]) == {
        s.file for split in ("train", "heldout") for s in manifest.shards(split)
    }
    verify_lineage(data, manifest.data)
    out = []
    for split in ("train", "heldout"):
        for info, path in zip(manifest.shards(split), manifest.paths(split), strict=True):
            entry = manifest.data["lineage"]["files"][info.file]
            assert entry["sha256"] == file_sha256(data / entry["file"])
            lineage = read_lineage(data, manifest.data, info.file).to_pylist()
            shard = open_shard(path).select([S.DOC_ID, S.SOURCE, S.KIND, S.STYLE]).to_pylist()
            assert len(lineage) == len(shard) == info.rows == entry["rows"]
            for line, row in zip(lineage, shard, strict=True):
                assert {k: line[k] for k in row} == row  # row i describes row i
            out += lineage
    return out


def test_ingest_then_tokenize_accounts_for_every_document(ray_local, corpus, tmp_path, monkeypatch):
    parts_per_run = []

    def encode_and_count_parts(*args, **kwargs):
        rows = encode(*args, **kwargs)
        parts_per_run.append(len(set(rows[PART].to_pylist())))
        return rows

    monkeypatch.setattr(stage_module, "encode", encode_and_count_parts)
    stats = tokenize_run(corpus, tmp_path / "one")
    assert stats.rows_in == 81 == stats.rows_out + stats.rows_dropped
    assert stats.dropped == {"too_short": 1}
    data = tmp_path / "one" / "tokenize" / "data"
    tok_file = tmp_path / "one" / "tokenize" / "tokenizer" / "tokenizer.model"
    manifest = load_manifest(data, tokenizer_sha256=file_sha256(tok_file))
    assert manifest.token_dtype == "uint16" and manifest.tokenizer["vocab_size"] == 400
    assert manifest.tokenizer["source"] == "trained:tokenize/tokenizer/tokenizer.model"
    assert manifest.documents("train") + manifest.documents("heldout") == stats.rows_out
    assert manifest.documents("heldout") >= 1 and stats.extra["shards_written"]["train"] > 1
    assert manifest.data["totals"]["by_source"]["books"]["documents"] >= 18
    assert manifest.data["mixture"]["source_weights"] == {"books": 2.0, "web": 1.0}
    tok = load_tokenizer(TokenizerSpec("sentencepiece", "t", tok_file.read_bytes(), "t"))
    ingested = {
        r[S.DOC_ID]: r[S.TEXT]
        for r in pq.read_table(tmp_path / "one" / "ingest" / "data").to_pylist()
    }
    seen = []
    for split in ("train", "heldout"):
        for info, path in zip(manifest.shards(split), manifest.paths(split), strict=True):
            shard = open_shard(path)
            assert shard.num_rows == info.rows
            assert info.tokens <= 600 or info.rows == 1  # the target, unless one long document
            for row in shard.to_pylist():
                assert row[S.KIND] == "raw" and row[S.STYLE] is None
                assert (
                    row[S.TOKENS][0] == 1
                    and row[S.TOKENS][-1] == 2
                    and row[S.N_TOKENS] == len(row[S.TOKENS])
                )
                assert tok.decode(row[S.TOKENS][1:-1]) == ingested[row[S.DOC_ID]]  # exact text back
                seen.append(row[S.DOC_ID])
    assert sorted(seen) == sorted(set(ingested) - {"web/tiny"})  # each document exactly once
    dropped = pq.read_table(tmp_path / "one" / "quarantine" / "tokenize").to_pylist()
    assert [(r[S.DOC_ID], r[S.DROP_REASON], r[S.SNIPPET]) for r in dropped] == [
        ("web/tiny", "too_short", "Hi.")
    ]
    assert "shards.min_tokens=16" in dropped[0][S.DROP_DETAIL]
    assert stats.extra["tokens_written"] == manifest.tokens("train") + manifest.tokens("heldout")
    lineage = check_lineage(data, manifest)
    by_id = {
        r[S.DOC_ID]: r for r in pq.read_table(tmp_path / "one" / "ingest" / "data").to_pylist()
    }
    for line in lineage:  # a raw row points to its input file and line
        doc = by_id[line[S.DOC_ID]]
        assert line[S.SOURCE_DOC_ID] == line[S.DOC_ID]
        assert (line[S.PATH], line[S.LOCATION]) == (doc[S.PATH], doc[S.LOCATION])
        assert line[S.LOCATION] >= 1 and line[S.PROMPT_ID] is None and line[S.MODEL] is None

    assert not (tmp_path / "one" / "tokenize" / PARTS_DIR).exists()  # parts are gone

    # A second run elsewhere gives the same bytes: shards, manifest and the trained tokenizer,
    # though its rows are encoded in many small items (one task and part file each).
    monkeypatch.setattr(inputs, "MIN_ITEM_BYTES", 2_000)
    tokenize_run(corpus, tmp_path / "two")
    assert parts_per_run[0] <= 2 < 5 <= parts_per_run[1], parts_per_run  # 2: one per row group
    assert files(data) == files(tmp_path / "two" / "tokenize" / "data")
    assert (
        tok_file.read_bytes()
        == (tmp_path / "two" / "tokenize" / "tokenizer" / "tokenizer.model").read_bytes()
    )


def test_rewrites_are_mixed_held_out_with_their_document_and_counted(ray_local, corpus, tmp_path):
    runner.run_pipeline(make_config(corpus, stages=("ingest",)), tmp_path)
    docs = pq.read_table(tmp_path / "ingest" / "data").to_pylist()
    n_rewrites = fake_rewrites(tmp_path, [d for d in docs if d[S.DOC_ID] != "web/tiny"][:30])
    config = make_config(corpus, stages=("ingest", "rewrite", "tokenize"))
    config.tokenizer.kind, config.tokenizer.path = (
        "sentencepiece",
        "package:mistral_common/data/tokenizer.model.v1",
    )
    config.shards.heldout_fraction = 0.2
    config.shards.rewrite_share = 0.5
    ctx = RunContext(
        run_dir=tmp_path,
        config=config,
        input_stage="rewrite",
        upstream=(("ingest", DOCS), ("rewrite", REWRITES)),
    )
    stats = TokenizeStage(config).run(ctx)
    stats.check()
    assert stats.rows_in == len(docs) + n_rewrites
    assert set(stats.dropped) <= {"too_short", "heldout_source", "mixture_ratio"}
    assert stats.dropped["mixture_ratio"] > 0 and stats.dropped["too_short"] == 1
    m = load_manifest(tmp_path / "tokenize" / "data")
    assert m.tokenizer["name"] == "tokenizer.model.v1" and m.tokenizer["vocab_size"] == 32000
    mixture = m.data["mixture"]
    assert mixture["applied"] and mixture["sampled_kind"] == "raw"
    assert 0.5 <= mixture["rewrite_share"] < 0.6  # raw kept up to its budget, never over
    train_rows = [r for p in m.paths("train") for r in open_shard(p).to_pylist()]
    held_rows = [r for p in m.paths("heldout") for r in open_shard(p).to_pylist()]
    texts = {d[S.DOC_ID]: d[S.TEXT] for d in docs}
    held_docs = {r[S.DOC_ID] for r in held_rows}
    assert held_rows and all(r[S.KIND] == "raw" for r in held_rows)
    for r in train_rows:  # no paraphrase of a held-out document is trained on
        assert r[S.DOC_ID].split("#")[0] not in held_docs
    rewrites = [r for r in train_rows if r[S.KIND] == "rewrite"]
    assert rewrites and all(r[S.STYLE] in ("qa", "wikipedia") for r in rewrites)
    by_style = m.data["totals"]["by_style"]
    assert sum(v["documents"] for v in by_style.values()) == len(rewrites)
    assert stats.extra["tokens_by_kind"]["rewrite"] == sum(r[S.N_TOKENS] for r in rewrites)
    quarantined = pq.read_table(tmp_path / "quarantine" / "tokenize").to_pylist()
    assert len(quarantined) == stats.rows_dropped
    assert {r[S.DROP_REASON] for r in quarantined} == set(stats.dropped)
    lineage = check_lineage(tmp_path / "tokenize" / "data", m)
    written = [line for line in lineage if line[S.KIND] == "rewrite"]
    assert len(written) == len(rewrites)
    for line in written:  # a rewrite row names its document, prompt, model and chunks
        doc_id, style = line[S.DOC_ID].split("#")
        template = get_template(style)
        assert (line[S.SOURCE_DOC_ID], line[S.STYLE], line[S.PROMPT_ID]) == (
            doc_id,
            style,
            template.key,
        )
        assert line[S.PROMPT_HASH] == template.content_hash
        assert (line[S.MODEL], line[S.MODEL_HASH]) == (MODEL, MODEL_HASH)
        assert line[S.SAMPLING] == SAMPLING
        assert line[S.CHUNK_SPANS] == chunk_spans(texts[doc_id]) and line[S.PATH] is None


def test_shards_load_in_hf_datasets(ray_local, corpus, tmp_path):
    datasets = pytest.importorskip("datasets")
    tokenize_run(corpus, tmp_path)
    m = load_manifest(tmp_path / "tokenize" / "data")
    paths = [str(p) for p in m.paths("train")]
    # load_dataset's "arrow" builder reads IPC files (it copies them into its cache) ...
    ds = datasets.load_dataset(
        "arrow", data_files={"train": paths}, split="train", cache_dir=str(tmp_path / "hf")
    )
    assert ds.num_rows == m.documents("train") and sum(ds["n_tokens"]) == m.tokens("train")
    assert str(ds.features["tokens"].feature.dtype) == "uint16"
    # ... and a memory-mapped shard wraps without a copy; Dataset.from_file reads only the
    # IPC *stream* format, so it cannot open a shard.
    wrapped = datasets.Dataset(open_shard(m.paths("train")[0]))
    assert wrapped.num_rows == m.shards("train")[0].rows
    with pytest.raises(pa.ArrowInvalid):
        datasets.Dataset.from_file(paths[0])
