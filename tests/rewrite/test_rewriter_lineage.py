"""The lineage columns of a rewrite row: the weights hash of the engine's model (null for an
engine without one) and the span of every chunk in the source document."""

from __future__ import annotations

import pyarrow as pa

from pipeline import schema as S
from pipeline.config import RewriteConfig
from pipeline.models.engine import Generation, VLLMEngine
from pipeline.rewrite.prompts import TEXT_HEADER
from pipeline.rewrite.rewriter import Rewriter

TEXT = "First paragraph has words.\n\nSecond paragraph has more words here.\n\nThird one."


class WordEngine:
    """Words are tokens; the rewrite upper-cases the chunk."""

    model_id = "words"
    max_model_len = 400

    def render(self, messages):
        return "\n".join(m["content"] for m in messages)

    def count_tokens(self, text):
        return len(text.split())

    def tail_tokens(self, text, n):
        return " ".join(text.split()[-n:]) if n else ""

    def generate(self, prompts, sampling):
        bodies = [p.rsplit(TEXT_HEADER + "\n", 1)[1] for p in prompts]
        return [Generation(b.upper(), "stop", 1, len(b.split())) for b in bodies]


def rewrite(engine) -> dict:
    cfg = RewriteConfig(styles=["wikipedia"], max_chunk_tokens=6, mode="independent")
    cfg.sampling.max_tokens = 64
    doc = {S.DOC_ID: "web/1", S.SOURCE: "web", S.WEIGHT: 1.0, S.TEXT: TEXT}
    (row,) = Rewriter(engine, cfg).rewrite([doc])
    return row


def test_each_chunk_is_named_by_its_index_and_span_in_the_source():
    row = rewrite(WordEngine())
    assert row[S.DROP_REASON] is None and row[S.N_CHUNKS] == len(row[S.CHUNK_SPANS]) > 1
    assert [s["index"] for s in row[S.CHUNK_SPANS]] == list(range(row[S.N_CHUNKS]))
    assert [TEXT[s["start"] : s["end"]] for s in row[S.CHUNK_SPANS]] == row[S.CHUNK_SOURCES]
    pa.Table.from_pylist([row], schema=S.with_drop_columns(S.REWRITES_SCHEMA))  # fits the schema


def test_the_row_names_the_weights_hash_of_the_engine_model(tmp_path):
    assert rewrite(WordEngine())[S.MODEL_HASH] is None  # an engine that has none
    engine = WordEngine()
    engine.model_hash = "ab" * 32
    assert rewrite(engine)[S.MODEL_HASH] == "ab" * 32
    # VLLMEngine hashes the folder it loaded, once (no vLLM needed to check that part).
    (tmp_path / "model.safetensors").write_bytes(b"weights")
    real = VLLMEngine.__new__(VLLMEngine)
    real.model_path = str(tmp_path)
    assert len(real.model_hash) == 64 and real.model_hash == real.__dict__["model_hash"]
    hub = VLLMEngine.__new__(VLLMEngine)
    hub.model_path = "org/some-model"
    assert hub.model_hash is None
