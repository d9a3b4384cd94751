"""Hand-made rewrite rows (REWRITES_SCHEMA) standing in for the rewrite stage's output, for tests
of the stages and readers after it: real prompt ids and hashes, a fake model; and a finished
run directory built around them (ingest, these rewrites, tokenize) without any model."""

from __future__ import annotations

import itertools
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from conftest import make_config, write_jsonl

from pipeline import runner
from pipeline import schema as S
from pipeline.config import SourceConfig
from pipeline.plumbing.atomic import atomic_write_json
from pipeline.rewrite.prompts import get_template
from pipeline.stage import DOCS, REWRITES, RunContext
from pipeline.stats import StageStats
from pipeline.tokens.stage import TokenizeStage

MODEL, MODEL_HASH = "fake", "f" * 64
SAMPLING = '{"seed": 0, "temperature": 0.7}'


def chunk_spans(text: str) -> list[dict]:
    """Two chunks, cut after the first sentence that ends past the middle (one if none)."""
    cut = text.find(". ", len(text) // 2) + 2
    bounds = [0, cut, len(text)] if 2 <= cut < len(text) else [0, len(text)]
    return [
        {"index": i, "start": a, "end": b} for i, (a, b) in enumerate(itertools.pairwise(bounds))
    ]


def fake_rewrites(run_dir: Path, docs: list[dict], styles=("qa", "wikipedia")) -> int:
    """Rewrite rows of `docs` (styles in turn) to <run_dir>/rewrite/data; returns their count."""
    rows = []
    for i, doc in enumerate(docs):
        style = styles[i % len(styles)]
        template = get_template(style)
        spans = chunk_spans(doc[S.TEXT])
        sources = [doc[S.TEXT][s["start"] : s["end"]] for s in spans]
        rewrites = [f"Question: what is this about? Answer: {t.strip()}" for t in sources]
        rewritten = "\n\n".join(rewrites)
        rows.append(
            {
                S.REWRITE_ID: f"{doc[S.DOC_ID]}#{style}",
                S.DOC_ID: doc[S.DOC_ID],
                S.SOURCE: doc[S.SOURCE],
                S.WEIGHT: 1.0,
                S.STYLE: style,
                S.PROMPT_ID: template.key,
                S.PROMPT_HASH: template.content_hash,
                S.MODEL: MODEL,
                S.MODEL_HASH: MODEL_HASH,
                S.SAMPLING: SAMPLING,
                S.MODE: "independent",
                S.N_CHUNKS: len(spans),
                S.TEXT: rewritten,
                S.SOURCE_TEXT: doc[S.TEXT],
                S.CHUNK_SOURCES: sources,
                S.CHUNK_REWRITES: rewrites,
                S.CHUNK_SPANS: spans,
                S.FINISH_REASONS: ["stop"] * len(spans),
                S.INPUT_TOKENS: 1,
                S.OUTPUT_TOKENS: 1,
                S.REQUESTS: len(spans),
                S.CACHED: 0,
                S.REMOVED: [],
                S.N_BYTES: len(rewritten.encode()),
            }
        )
    out = run_dir / "rewrite" / "data"
    out.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=S.REWRITES_SCHEMA), out / "part-00000.parquet")
    return len(rows)


def run_with_rewrites(root: Path, n_docs: int = 24, n_rewrites: int = 12) -> Path:
    """A finished run directory without a model: ingest (the runner), these rewrite rows as the
    rewrite stage's output, then the tokenize stage (Mistral's SentencePiece tokenizer) and a
    summary.json naming all three. Needs a local Ray (the `ray_local` fixture)."""

    records = [
        {
            "id": f"n{i}",
            "text": f"Report {i} opens here. The river rose {i + 2} metres in the night. "
            f"Crews from {i + 3} towns worked until dawn. Schools stayed shut on day {i}.",
        }
        for i in range(n_docs)
    ]
    sources = {"news": SourceConfig(paths=[str(write_jsonl(root / "news.jsonl", records))])}
    run_dir = root / "run"
    ingest = runner.run_pipeline(make_config(sources, stages=("ingest",)), run_dir).stages[0]
    docs = pq.read_table(run_dir / "ingest" / "data").to_pylist()
    n = fake_rewrites(run_dir, sorted(docs, key=lambda d: d[S.DOC_ID])[:n_rewrites])
    config = make_config(sources, stages=("ingest", "rewrite", "tokenize"))
    config.tokenizer.kind = "sentencepiece"
    config.tokenizer.path = "package:mistral_common/data/tokenizer.model.v1"
    config.shards.heldout_fraction = 0.1
    config.shards.target_tokens = 400
    ctx = RunContext(run_dir, config, "rewrite", (("ingest", DOCS), ("rewrite", REWRITES)))
    tokenize = TokenizeStage(config).run(ctx)
    stages = [ingest, StageStats("rewrite", rows_in=n, rows_out=n), tokenize]
    atomic_write_json(run_dir / "summary.json", runner.RunSummary(run_dir, stages).to_dict())
    return run_dir
