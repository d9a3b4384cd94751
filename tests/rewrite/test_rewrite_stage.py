"""The real default model (the upcycled SmolLM2 MoE on vLLM's CPU build) rewrites real text
through the Ray stage; a rerun is served by the generation cache."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from conftest import ROOT, local_model_config, make_config, write_jsonl

from pipeline import runner
from pipeline import schema as S
from pipeline.config import SourceConfig
from pipeline.text_fidelity.cleaning import clean_generation

# Full tier: the CI tier generates with the real model in test_worker_faults.py, and checks
# the cache with a fake engine (test_cache.py, test_rewriter.py).
pytestmark = [pytest.mark.slow, pytest.mark.vllm]

NEWS = ROOT / "data" / "sample" / "news" / "lee_background.parquet"


@pytest.fixture(scope="module")
def news_docs(tmp_path_factory):
    if not NEWS.exists():
        pytest.skip("sample corpus not built (make data)")
    texts = pq.read_table(NEWS).to_pylist()[:3]
    path = tmp_path_factory.mktemp("news") / "news.jsonl"
    return write_jsonl(path, [{"id": r["id"], "text": r["text"]} for r in texts])


def rewrite_run(path, run_dir, cache_dir):
    config = make_config({"news": SourceConfig(paths=[str(path)])}, stages=("ingest", "rewrite"))
    config.model = local_model_config()
    # The demo's settings (conf/rewrite/demo.yaml): what the 135M model's samples pass the
    # gate with, often enough for a document of three to keep a rewrite.
    config.rewrite.styles = ["qa", "summary"]
    config.rewrite.max_chunks_per_doc = 2
    config.rewrite.max_chunk_tokens = 128
    config.rewrite.max_attempts = 3
    config.rewrite.sampling.max_tokens = 160
    config.rewrite.sampling.temperature = 0.3
    config.rewrite.sampling.repetition_penalty = 1.05
    config.rewrite.cache_dir = str(cache_dir)
    config.rewrite.model_cache = str(ROOT / ".cache" / "models")
    return runner.run_pipeline(config, run_dir).stages[-1]


def test_the_default_model_rewrites_real_text_and_a_rerun_hits_the_cache(
    ray_local, news_docs, tmp_path
):
    stats = rewrite_run(news_docs, tmp_path / "first", tmp_path / "cache")
    assert stats.rows_in == 3 == stats.rows_out + stats.rows_dropped
    assert stats.rows_out >= 1, stats.dropped
    rows = pq.read_table(tmp_path / "first" / "rewrite" / "data").to_pylist()
    for row in rows:
        assert row[S.TEXT].strip() and row[S.STYLE] in ("qa", "summary")
        assert row[S.MODEL] == "smollm2-moe-e4-top2" and row[S.PROMPT_ID].endswith("@v1")
        assert row[S.OUTPUT_TOKENS] > 0 and row[S.INPUT_TOKENS] > 0
        assert all(r in ("stop", "length") for r in row[S.FINISH_REASONS])
        for chunk in row[S.CHUNK_REWRITES]:  # what post-processing kept is clean already
            assert clean_generation(chunk, "stop").text == chunk.strip()
        assert row[S.SOURCE_TEXT] and row[S.DOC_ID].startswith("news/")
    assert stats.extra["cache_hit_rate"] == 0.0

    again = rewrite_run(news_docs, tmp_path / "second", tmp_path / "cache")
    assert again.extra["cache_hit_rate"] == 1.0
    assert again.extra["output_tokens"] == stats.extra["output_tokens"]
    rerun = pq.read_table(tmp_path / "second" / "rewrite" / "data").to_pylist()
    assert sorted(r[S.TEXT] for r in rerun) == sorted(r[S.TEXT] for r in rows)
