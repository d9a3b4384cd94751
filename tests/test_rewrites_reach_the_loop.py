"""The product end to end with the real local model: real news text is rewritten by the
upcycled SmolLM2 MoE on vLLM (best of n, the fidelity gate as verifier), kept by the fidelity
stage, tokenized with the model's own tokenizer into shards, and read by TokenShardDataset;
a rewrite decoded from a loader batch leads back to its source document, prompt and model."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from conftest import ROOT, local_model_config, make_config, write_jsonl

from pipeline import runner
from pipeline import schema as S
from pipeline.config import SourceConfig
from pipeline.run_view import Run
from pipeline.train.dataset import TokenShardDataset, TokenShardLoader

# The real model: 3 engine calls at most. Full tier: the CI tier's vLLM test is the killed engine
# actor (test_worker_faults.py); the loop reading rewrites, test_provenance.py (hand-made rows).
pytestmark = [pytest.mark.slow, pytest.mark.vllm]

NEWS = ROOT / "data" / "sample" / "news" / "lee_background.parquet"
STAGES = ("ingest", "rewrite", "fidelity", "tokenize")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, ray_local):
    if not NEWS.exists():
        pytest.skip("sample corpus not built (make data)")
    root = tmp_path_factory.mktemp("e2e")
    records = [{"id": r["id"], "text": r["text"]} for r in pq.read_table(NEWS).to_pylist()[:8]]
    sources = {"news": SourceConfig(paths=[str(write_jsonl(root / "news.jsonl", records))])}
    config = make_config(sources, stages=STAGES)
    config.model = local_model_config()
    rewrite = config.rewrite
    rewrite.styles = ["qa", "knowledge_list"]
    rewrite.max_docs_per_source = 6
    rewrite.max_chunks_per_doc = 1
    rewrite.max_chunk_tokens = 128
    rewrite.mode = "independent"  # as conf/rewrite/demo.yaml: one engine call per attempt
    rewrite.sampling.temperature = 0.3
    rewrite.sampling.repetition_penalty = 1.05
    rewrite.sampling.max_tokens = 160
    rewrite.max_attempts = 3
    rewrite.cache_dir = str(root / "generations")
    rewrite.model_cache = str(ROOT / ".cache" / "models")
    config.fidelity.dedup.enabled = False  # six short rewrites: nothing to deduplicate
    config.shards.heldout_fraction = 0.0
    run_dir = root / "run"
    summary = runner.run_pipeline(config, run_dir)
    for stats in summary.stages:
        stats.check()
    return run_dir


def test_rewrites_pass_the_gate_and_are_written_as_rewrite_tokens(run_dir):
    run = Run(run_dir)
    attempts = run.stats("rewrite").extra["attempts"]
    assert attempts["chunks"] >= 6 and attempts["samples"] >= attempts["chunks"]
    assert attempts["chunks_accepted"] >= 1, attempts
    assert run.stats("fidelity").rows_out >= 1, run.stats("fidelity").dropped
    assert run.stats("tokenize").extra["tokens_by_kind"].get("rewrite", 0) > 0
    rejected = run.rejected_attempts()
    assert rejected.num_rows == sum(attempts["rejected_by_rule"].values())


def test_a_rewrite_in_a_loader_batch_decodes_and_traces_to_its_source_prompt_and_model(run_dir):
    run = Run(run_dir)
    kept = {r[S.REWRITE_ID]: r for r in run.data("fidelity").to_pylist()}
    ds = TokenShardDataset(run_dir / "tokenize" / "data", seq_len=128, batch_size=2, seed=0)
    for batch in TokenShardLoader(ds):
        flat = batch["input_ids"].reshape(-1).tolist()
        for piece in ds.batch_documents(batch):
            trace = run.trace(piece["shard"], piece["row"])
            if trace.kind != "rewrite":
                continue
            tokens = flat[piece["position"] : piece["position"] + piece["end"] - piece["begin"]]
            text = run.decode(tokens).strip()
            row = kept[trace.doc_id]
            assert text and text in row[S.TEXT]
            assert trace.source_text and row[S.SOURCE_TEXT] in trace.source_text
            assert trace.model == "smollm2-moe-e4-top2" and trace.lineage[S.MODEL_HASH]
            assert trace.prompt["hash_matches"] and trace.prompt["id"] == row[S.PROMPT_ID]
            assert trace.lineage[S.CHUNK_ATTEMPTS] == row[S.CHUNK_ATTEMPTS]
            return
    pytest.fail("no rewrite in any batch")
