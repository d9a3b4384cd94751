"""Real texts for the quality tests: sample-corpus documents by id, and the real default
model's recorded outputs paired with the source chunks they rewrote."""

from __future__ import annotations

import gzip
import json
from functools import lru_cache
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from pipeline import schema as S
from pipeline.stage import DOCS, REWRITES, RunContext
from pipeline.text_fidelity.cleaning import clean_generation

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "sample"
HERE = Path(__file__).parent
RECORDED = ROOT / "tests" / "rewrite" / "recorded_smollm2_moe.json"


def _normalise(text: str) -> str:
    # What ingest does to these files (CRLF, outer whitespace); enough for scoring.
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()


@lru_cache(maxsize=1)
def sample_texts() -> dict[str, str]:
    """{doc_id as ingest names it: text} for every sample document."""
    if not (SAMPLE / "manifest.json").exists():
        pytest.skip("sample corpus not built (make data)")
    docs = {}
    for row in pq.read_table(SAMPLE / "news" / "lee_background.parquet").to_pylist():
        docs[f"news/{row['id']}"] = _normalise(row["text"])
    with gzip.open(SAMPLE / "news" / "lee.jsonl.gz", "rb") as f:
        for line in f:
            try:
                row = json.loads(line.decode("utf-8"))
            except UnicodeDecodeError:
                continue  # the one ISO-8859-1 line ingest quarantines
            docs[f"news/{row['id']}"] = _normalise(row["text"])
    raw = zstandard.ZstdDecompressor().stream_reader(
        (SAMPLE / "wiki" / "enwiki.jsonl.zst").open("rb")
    )
    for line in raw.read().decode("utf-8").splitlines():
        row = json.loads(line)
        docs[f"wiki/{row['id']}"] = _normalise(row["text"])
    for path in sorted((SAMPLE / "literature").glob("*.txt")):
        docs[f"literature/{path.name}"] = _normalise(path.read_text(encoding="utf-8"))
    return docs


def sample_text(doc_id: str) -> str:
    return sample_texts()[doc_id]


@lru_cache(maxsize=1)
def recorded_pairs() -> list[dict]:
    """The 20 recorded generations of the real default model, each with its source chunk,
    style and finish reason: {"generation", "text", "finish_reason", "source", "style", ...}."""
    generations = json.loads(RECORDED.read_text())["generations"]
    sources = json.loads((HERE / "recorded_sources.json").read_text())["pairs"]
    return [{**g, **s} for g, s in zip(generations, sources, strict=True)]


def faithful_rewrites() -> list[dict]:
    """Hand-written faithful rewrites of four recorded sources (the real model wrote none)."""
    return json.loads((HERE / "faithful_rewrites.json").read_text())["rewrites"]


def rewrite_row(rewrite_id: str, style: str, text: str, source: str, finish: str = "stop"):
    """A row of the rewrite stage's output (REWRITES_SCHEMA) for one single-chunk rewrite."""
    doc_id = rewrite_id.split("#")[0]
    return {
        S.REWRITE_ID: rewrite_id, S.DOC_ID: doc_id, S.SOURCE: doc_id.split("/")[0],
        S.WEIGHT: 1.0, S.STYLE: style, S.PROMPT_ID: f"{style}@v1", S.PROMPT_HASH: "0" * 12,
        S.MODEL: "smollm2-moe-e4-top2", S.SAMPLING: "{}", S.MODE: "autoregressive",
        S.N_CHUNKS: 1, S.TEXT: text, S.SOURCE_TEXT: source, S.CHUNK_SOURCES: [source],
        S.CHUNK_REWRITES: [text], S.FINISH_REASONS: [finish], S.INPUT_TOKENS: 100,
        S.OUTPUT_TOKENS: 100, S.REQUESTS: 1, S.CACHED: 0, S.REMOVED: [],
        S.N_BYTES: len(text.encode()),
    }  # fmt: skip


def recorded_rewrite_rows(picks=None, faithful: int = 4) -> list[dict]:
    """The recorded real outputs (post-processed as the rewrite stage stores them, one row
    each, ids made unique) and `faithful` hand-written faithful rewrites, as rewrite rows."""
    pairs = recorded_pairs()
    rows = []
    for i in range(len(pairs)) if picks is None else picks:
        p = pairs[i]
        doc, style = p["rewrite_id"].split("#")
        text = clean_generation(p["text"], p["finish_reason"]).text
        rows.append(
            rewrite_row(f"{doc}-g{i}#{style}", style, text, p["source"], p["finish_reason"])
        )
    sources = {p["generation"]: p for p in pairs}
    for r in faithful_rewrites()[:faithful]:
        p = sources[r["generation"]]
        doc = p["rewrite_id"].split("#")[0]
        rows.append(rewrite_row(f"{doc}-ok#{r['style']}", r["style"], r["text"], p["source"]))
    return rows


def rewrites_run(run_dir: Path, config, picks=None, faithful: int = 4, extra_rows=()):
    """A run directory whose `rewrite` stage output holds the given rewrite rows, and the
    RunContext of a fidelity stage after it. Returns (ctx, number of rows)."""
    rows = recorded_rewrite_rows(picks, faithful) + list(extra_rows)
    data = Path(run_dir) / "rewrite" / "data"
    data.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist(rows, schema=S.REWRITES_SCHEMA)
    half = table.num_rows // 2  # two parts, as several write tasks would leave
    if rows:  # the sink writes no file at all for no rows
        pq.write_table(table.slice(0, half), data / "part-00000.parquet")
        pq.write_table(table.slice(half), data / "part-00001.parquet")
    ctx = RunContext(
        run_dir=Path(run_dir),
        config=config,
        input_stage="rewrite",
        upstream=(("ingest", DOCS), ("rewrite", REWRITES)),
    )
    return ctx, len(rows)
