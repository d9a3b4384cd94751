"""The quality and fidelity stages on the local Ray: ingest -> quality through the runner on
real sample documents, and the fidelity stage on a rewrite table of the real model's recorded
outputs plus faithful rewrites and duplicates. Every row is accounted for."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from conftest import make_config, write_jsonl
from quality_fixtures import (
    faithful_rewrites,
    recorded_pairs,
    rewrite_row,
    rewrites_run,
    sample_text,
)

from pipeline import runner
from pipeline import schema as S
from pipeline.config import SourceConfig
from pipeline.quality.fidelity_stage import FidelityStage
from pipeline.run_view import Run

KEPT_DOCS = ["news/lee_background-0051", "news/lee_background-0152", "wiki/674", "wiki/600"]
DROPPED_DOCS = {
    "news/lee-0000": "c4_too_few_sentences",
    "news/lee_background-0207": "gopher_too_few_words",
    "wiki/630": "c4_too_few_sentences",
    "wiki/586": "c4_curly_brace",
}


def read_rows(path):
    return pq.read_table(path).to_pylist() if path.exists() and any(path.iterdir()) else []


@pytest.fixture
def small_corpus(tmp_path):
    docs = [{"id": d.split("/")[1], "text": sample_text(d)} for d in KEPT_DOCS + list(DROPPED_DOCS)]
    write_jsonl(tmp_path / "corpus" / "docs.jsonl", docs)
    play = tmp_path / "corpus" / "books" / "hamlet_gut.txt"
    play.parent.mkdir(parents=True)
    play.write_text(sample_text("literature/hamlet_gut.txt"))
    return {
        "web": SourceConfig(paths=[str(tmp_path / "corpus" / "docs.jsonl")]),
        "books": SourceConfig(paths=[str(play)], format="text"),
    }


def test_ingest_then_quality_accounts_for_every_document(ray_local, small_corpus, tmp_path):
    config = make_config(small_corpus, stages=("ingest", "quality"))
    config.quality.skip_rules = {"books": ["c4_line_filter", "c4_too_few_sentences", "fineweb_*"]}
    run_dir = tmp_path / "run"
    summary = runner.run_pipeline(config, run_dir)
    ingest, quality = summary.stages
    assert quality.rows_in == ingest.rows_out == 9
    assert quality.rows_in == quality.rows_out + quality.rows_dropped
    kept = read_rows(run_dir / "quality" / "data")
    dropped = read_rows(run_dir / "quality" / "quarantine") or read_rows(
        run_dir / "quarantine" / "quality"
    )
    assert len(kept) == quality.rows_out == 5 and len(dropped) == quality.rows_dropped == 4
    assert {r["doc_id"].split("/")[1] for r in dropped} == {d.split("/")[1] for d in DROPPED_DOCS}
    by_id = {r["doc_id"].split("/")[1]: r for r in dropped}
    for doc, reason in DROPPED_DOCS.items():
        row = by_id[doc.split("/")[1]]
        assert row["reason"] == reason and row["detail"] and row["snippet"]
        assert row[S.QUALITY_FAILED][0] == reason and row[S.Q_WORDS] > 0  # scores kept
    play = next(r for r in kept if r["source"] == "books")
    assert play[S.Q_C4_KEPT_CHAR_FRAC] < 0.3 and play[S.QUALITY_FAILED] == []
    assert set(pq.read_schema(next((run_dir / "quality" / "data").glob("*.parquet"))).names) >= {
        *S.DOCS_SCHEMA.names,
        *(f.name for f in S.QUALITY_FIELDS),
    }
    # Stats: drops per rule, every failure, histograms; the summary prints the failing ones.
    assert quality.dropped == {
        "c4_curly_brace": 1,
        "c4_too_few_sentences": 2,
        "gopher_too_few_words": 1,
    }
    assert quality.extra["rule_fails"]["c4_too_few_sentences"] >= 3
    assert quality.extra["kept_by_source"] == {"books": 1, "web": 4}
    histogram = quality.extra["score_histograms"][S.Q_WORDS]
    assert sum(histogram["counts"]) == 9 and histogram["edges"][0] == 46
    text = (run_dir / "summary.txt").read_text()
    assert "quality: score histograms" in text and S.Q_C4_SENTENCES in text
    # Dropped rows are browsable with their scores.
    rows = Run(run_dir).dropped("quality", "c4_too_few_sentences").to_pylist()
    assert len(rows) == 2 and all(r[S.Q_C4_SENTENCES] < 3 for r in rows)
    # Resume: nothing changed, nothing reruns; a threshold change reruns quality only.
    assert runner.run_pipeline(config, run_dir).skipped == ["ingest", "quality"]
    config.quality.c4.min_sentences = None
    again = runner.run_pipeline(config, run_dir)
    assert again.skipped == ["ingest"] and "c4_too_few_sentences" not in again.stages[1].dropped


def fidelity_config(**fidelity):
    config = make_config({}, stages=("ingest", "rewrite", "fidelity"))
    for key, value in fidelity.items():
        setattr(config.fidelity, key, value)
    return config


def test_fidelity_stage_on_real_model_outputs_and_duplicates(ray_local, tmp_path):
    pairs = recorded_pairs()
    faithful = faithful_rewrites()
    story = next(p for p in pairs if p["generation"] == faithful[0]["generation"])["source"]
    near_copy_of_story = " ".join(
        "indeed" if i % 50 == 3 else w for i, w in enumerate(story.split())
    )
    extra = [
        # The same story from another feed, rewritten in the same style: a source duplicate.
        rewrite_row(
            "news/feed2#knowledge_list", "knowledge_list", faithful[0]["text"], near_copy_of_story
        ),
    ]
    config = fidelity_config()
    ctx, n = rewrites_run(tmp_path, config, extra_rows=extra)
    stats = FidelityStage(config).run(ctx)
    stats.check()
    assert stats.rows_in == n == 25
    kept = read_rows(tmp_path / "fidelity" / "data")
    dropped = read_rows(tmp_path / "quarantine" / "fidelity")
    assert len(kept) + len(dropped) == n and len(kept) == stats.rows_out
    # The 20 real outputs are all dropped; of the 5 faithful rows, the duplicate goes.
    assert all("-ok#" in r[S.REWRITE_ID] or r[S.REWRITE_ID] == "news/feed2#knowledge_list"
               for r in kept)  # fmt: skip
    assert len(kept) == 4
    duplicates = [r for r in dropped if r["reason"] == "duplicate_rewrite"]
    assert len(duplicates) == 1
    pair = {duplicates[0][S.REWRITE_ID], duplicates[0][S.DUPLICATE_OF]}
    assert pair == {"news/feed2#knowledge_list", "news/lee_background-0051-ok#knowledge_list"}
    assert stats.dropped["truncated"] == 8 and stats.dropped["boilerplate"] >= 6
    assert stats.extra["duplicate_pairs"] == 1
    assert stats.extra["rule_fails"]["unfaithful"] >= 15
    assert sum(stats.extra["score_histograms"][S.F_LENGTH_RATIO]["counts"]) == n
    for row in dropped:  # every score is kept with the dropped row
        assert row[S.F_LENGTH_RATIO] is not None and row["detail"]


@pytest.mark.slow
def test_fidelity_caps_per_source_document_and_style(ray_local, tmp_path):
    faithful = faithful_rewrites()[1]  # the Andorra rewrite
    source = next(p["source"] for p in recorded_pairs() if p["generation"] == 11)
    ids = ["wiki/600-a#student", "wiki/600-a#expert", "wiki/600-a#wikipedia", "wiki/600-b#student"]
    rows = [rewrite_row(i, i.split("#")[1], faithful["text"], source) for i in ids]
    config = fidelity_config(max_per_source_doc=2, max_per_style=1)
    config.fidelity.dedup.enabled = False  # the four texts are identical on purpose
    ctx, n = rewrites_run(tmp_path, config, picks=(), faithful=0, extra_rows=rows)
    stats = FidelityStage(config).run(ctx)
    stats.check()
    assert n == stats.rows_in == 4
    assert stats.dropped["source_doc_cap"] == 1  # wiki/600-a keeps 2 of its 3 styles
    kept = read_rows(tmp_path / "fidelity" / "data")
    styles = [r[S.STYLE] for r in kept]
    assert len(styles) == len(set(styles)) == stats.rows_out  # max_per_style=1
    assert stats.rows_out + sum(stats.dropped.values()) == 4


@pytest.mark.slow
def test_fidelity_with_no_rewrites_at_all(ray_local, tmp_path):
    config = fidelity_config(max_per_source_doc=1, max_per_style=1)
    ctx, n = rewrites_run(tmp_path, config, picks=(), faithful=0)
    stats = FidelityStage(config).run(ctx)
    stats.check()
    assert n == stats.rows_in == stats.rows_out == 0 and stats.dropped == {}
