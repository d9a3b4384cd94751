"""Lineage to the token: Run(dir) takes a token-shard row (or a batch of the loader) back to
its source document's text, the chunks rewritten, the prompt, and the model and its hash."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
import yaml
from rewrite_rows import MODEL, MODEL_HASH, SAMPLING, run_with_rewrites

from pipeline import schema as S
from pipeline.rewrite.prompts import build_messages, get_template
from pipeline.run_view import Run
from pipeline.token_shards.files import open_shard
from pipeline.token_shards.manifest import load_manifest
from pipeline.train.dataset import TokenShardDataset, TokenShardLoader


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, ray_local):
    return run_with_rewrites(tmp_path_factory.mktemp("provenance"))


def ingested(run_dir) -> dict[str, dict]:
    return {r[S.DOC_ID]: r for r in pq.read_table(run_dir / "ingest" / "data").to_pylist()}


def rewrite_rows(run_dir) -> dict[str, dict]:
    rows = pq.read_table(run_dir / "rewrite" / "data").to_pylist()
    return {r[S.REWRITE_ID]: r for r in rows}


def test_the_lineage_table_has_a_row_for_every_shard_row(run_dir):
    run = Run(run_dir)
    manifest = load_manifest(run_dir / "tokenize" / "data")
    table = run.lineage()
    shard_rows = [
        (path.name, i, row[S.DOC_ID])
        for split in ("train", "heldout")
        for path in manifest.paths(split)
        for i, row in enumerate(open_shard(path).select([S.DOC_ID]).to_pylist())
    ]
    assert (
        list(
            zip(
                table["shard"].to_pylist(),
                table["row"].to_pylist(),
                table[S.DOC_ID].to_pylist(),
                strict=True,
            )
        )
        == shard_rows
    )
    assert {k for k in table[S.KIND].to_pylist()} == {"raw", "rewrite"}


def test_a_rewrite_row_traces_back_to_its_source_text_prompt_and_model(run_dir):
    run = Run(run_dir)
    docs, rewrites = ingested(run_dir), rewrite_rows(run_dir)
    traced = 0
    for rewrite_id, rewrite in rewrites.items():
        places = run.locate(rewrite_id)
        if not places:  # a rewrite of a held-out document is set aside
            continue
        ((shard, row),) = places
        t = run.trace(shard, row)
        assert t.lineage == run.lineage(shard, row) and t.kind == "rewrite"
        doc = docs[rewrite[S.DOC_ID]]
        assert t.lineage[S.SOURCE_DOC_ID] == doc[S.DOC_ID]
        assert t.source_text == doc[S.TEXT]
        assert (t.source_path, t.source_location) == (doc[S.PATH], doc[S.LOCATION])
        assert [c["index"] for c in t.chunks] == list(range(rewrite[S.N_CHUNKS]))
        assert [c["text"] for c in t.chunks] == rewrite[S.CHUNK_SOURCES]
        template = get_template(rewrite[S.STYLE])
        assert t.prompt == {
            "id": template.key,
            "hash": template.content_hash,
            "instruction": template.instruction,
            "examples": len(template.examples),
            "found_in": f"config.yaml: rewrite.prompts.{rewrite[S.STYLE]}",
            "hash_matches": True,
            "messages": build_messages(template, t.chunks[0]["text"]),
        }
        assert (t.model, t.model_hash, t.sampling) == (MODEL, MODEL_HASH, json.loads(SAMPLING))
        # The shard row's tokens are the rewrite's text.
        tokens = open_shard(run_dir / "tokenize" / "data" / shard)[S.TOKENS][row].as_py()
        assert run.decode(tokens) == t.rewrite_text == rewrite[S.TEXT]
        traced += 1
    assert traced >= len(rewrites) // 2


def test_a_raw_row_traces_back_to_its_input_file_and_line(run_dir):
    run = Run(run_dir)
    docs = ingested(run_dir)
    table = run.lineage()
    i = table[S.KIND].to_pylist().index("raw")
    t = run.trace(table["shard"][i].as_py(), table["row"][i].as_py())
    doc = docs[t.doc_id]
    assert t.source_text == doc[S.TEXT] and t.lineage[S.SOURCE_DOC_ID] == t.doc_id
    assert (t.source_path, t.source_location) == (doc[S.PATH], doc[S.LOCATION])
    assert t.prompt is None and t.chunks == [] and t.model is None


def test_the_prompt_comes_from_the_run_saved_config(run_dir):
    """The templates the run rendered (config.yaml, rewrite.prompts) win over the built-in
    ones; an edited template is found but its hash no longer matches the row's."""
    config = run_dir / "config.yaml"
    saved = config.read_text()
    qa, wiki = get_template("qa"), get_template("wikipedia")
    try:
        edited = yaml.safe_load(saved)
        edited["rewrite"]["prompts"]["wikipedia"]["instruction"] = "Edited after the run."
        config.write_text(yaml.safe_dump(edited))
        run = Run(run_dir)
        found = run.provenance.prompt(qa.key, qa.content_hash, "qa", "Some text.")
        assert found["found_in"] == "config.yaml: rewrite.prompts.qa" and found["hash_matches"]
        assert found["messages"] == build_messages(qa, "Some text.")
        changed = run.provenance.prompt(wiki.key, wiki.content_hash, "wikipedia")
        assert changed["instruction"] == "Edited after the run." and not changed["hash_matches"]
        del edited["rewrite"]["prompts"]  # a run from before prompts were config: built-in set
        config.write_text(yaml.safe_dump(edited))
        builtin = Run(run_dir).provenance.prompt(wiki.key, wiki.content_hash, "wikipedia")
        assert (
            builtin["found_in"].startswith("conf/prompts/default.yaml") and builtin["hash_matches"]
        )
        unknown = Run(run_dir).provenance.prompt("gone@v9", "0" * 12, "gone")
        assert unknown["instruction"] is None and not unknown["hash_matches"]
    finally:
        config.write_text(saved)


def test_a_loader_batch_leads_to_the_rewrite_it_holds(run_dir):
    run = Run(run_dir)
    ds = TokenShardDataset(run_dir / "tokenize" / "data", seq_len=64, batch_size=2, seed=1)
    rewrites = rewrite_rows(run_dir)
    for batch in TokenShardLoader(ds):
        flat = batch["input_ids"].reshape(-1).tolist()
        for piece in ds.batch_documents(batch):
            t = run.trace(piece["shard"], piece["row"])
            if t.kind != "rewrite":
                continue
            tokens = flat[piece["position"] : piece["position"] + piece["end"] - piece["begin"]]
            text = run.decode(tokens)
            assert text.strip() and text.strip() in rewrites[t.doc_id][S.TEXT]
            assert t.source_text and t.prompt["hash_matches"] and t.model == MODEL
            return
    pytest.fail("no rewrite in any batch")
