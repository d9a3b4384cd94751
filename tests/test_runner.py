"""End-to-end tests of the runner on a small mixed corpus with a real local Ray."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from conftest import make_config

from pipeline import runner
from pipeline import schema as S
from pipeline.config import ConfigError
from pipeline.ingest.stage import IngestStage
from pipeline.run_view import Run
from pipeline.stats import AccountingError


def read_dir(path):
    return pq.read_table(path).to_pylist() if path.exists() else []


def test_ingest_accounts_for_every_record(ray_local, mixed_corpus, tmp_path):
    run_dir = tmp_path / "run"
    summary = runner.run_pipeline(make_config(mixed_corpus["sources"], max_doc_bytes=4000), run_dir)

    (stats,) = summary.stages
    assert stats.rows_in == stats.rows_out + stats.rows_dropped
    docs = read_dir(run_dir / "ingest" / "data")
    dropped = read_dir(run_dir / "quarantine" / "ingest")
    assert len(docs) == stats.rows_out and len(dropped) == stats.rows_dropped
    reasons = {r["reason"] for r in dropped}
    assert {
        "invalid_json",
        "invalid_utf8",
        "missing_text",
        "non_string_text",
        "empty_text",
        "too_large",
        "truncated_archive",
    } <= reasons
    # Every quarantined row says where it came from.
    for row in dropped:
        assert row["path"] and row["source"] and row["reason"] and row["detail"]
    by_id = {d["doc_id"]: d for d in docs}
    assert by_id["web/a2"]["text"] == "Café au lait." and "nfc" in by_id["web/a2"]["normalized"]
    assert by_id["books/two.txt"]["text"] == "A book with a byte-order mark."
    assert by_id["wiki/p0"]["weight"] == 2.0 and by_id["books/one.txt"]["weight"] == 0.5
    assert any(d.startswith("web/h:") for d in by_id)
    assert stats.extra["rows_out_by_source"]["books"] == 2
    assert stats.extra["normalized"]["bom"] == 1


def test_run_directory_layout(ray_local, mixed_corpus, tmp_path):
    run_dir = tmp_path / "run"
    runner.run_pipeline(make_config(mixed_corpus["sources"]), run_dir)
    for name in (
        "config.yaml",
        "summary.json",
        "summary.txt",
        "ingest/stats.json",
        "ingest/_SUCCESS",
    ):
        assert (run_dir / name).is_file(), name
    assert pq.read_schema(next((run_dir / "ingest" / "data").glob("*.parquet"))) == S.DOCS_SCHEMA
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["stages"][0]["stage"] == "ingest"
    assert "ingest" in (run_dir / "summary.txt").read_text()


def test_rerun_reuses_completed_stage_and_config_change_reruns(ray_local, mixed_corpus, tmp_path):
    run_dir = tmp_path / "run"
    config = make_config(mixed_corpus["sources"])
    first = runner.run_pipeline(config, run_dir)
    parts = sorted((run_dir / "ingest" / "data").glob("*.parquet"))
    mtimes = [p.stat().st_mtime_ns for p in parts]

    again = runner.run_pipeline(config, run_dir)
    assert again.skipped == ["ingest"]
    assert [p.stat().st_mtime_ns for p in parts] == mtimes
    assert again.stages[0].rows_out == first.stages[0].rows_out

    changed = make_config(mixed_corpus["sources"], max_doc_bytes=20)
    third = runner.run_pipeline(changed, run_dir)
    assert third.skipped == []
    assert third.stages[0].dropped["too_large"] > first.stages[0].dropped.get("too_large", 0)


def test_a_stage_that_loses_rows_fails_and_is_not_marked_done(
    ray_local, mixed_corpus, tmp_path, monkeypatch
):
    class LossyIngest(IngestStage):
        def run(self, ctx):
            stats = super().run(ctx)
            stats.rows_out -= 1
            return stats

    monkeypatch.setitem(runner.STAGES, "ingest", LossyIngest)
    run_dir = tmp_path / "run"
    with pytest.raises(AccountingError, match="lost track of rows"):
        runner.run_pipeline(make_config(mixed_corpus["sources"]), run_dir)
    assert not (run_dir / "ingest" / "_SUCCESS").exists()


def test_bad_config_stops_before_any_work(mixed_corpus, tmp_path):
    sources = dict(mixed_corpus["sources"])
    sources["web"].paths = [str(tmp_path / "nowhere" / "*.jsonl")]
    run_dir = tmp_path / "run"
    with pytest.raises(ConfigError, match=r"corpus\.sources\.web\.paths: no file matches"):
        runner.run_pipeline(make_config(sources), run_dir)
    assert not run_dir.exists()


def test_a_run_reads_back_for_inspection(ray_local, mixed_corpus, tmp_path):
    run_dir = tmp_path / "run"
    summary = runner.run_pipeline(make_config(mixed_corpus["sources"]), run_dir)
    run = Run(run_dir)
    funnel = run.funnel().to_pylist()
    assert funnel[0]["stage"] == "ingest" and funnel[0]["rows_out"] == summary.stages[0].rows_out
    assert run.data("ingest").num_rows == summary.stages[0].rows_out
    quarantined = run.quarantine("ingest", columns=["reason"])
    assert quarantined.num_rows == sum(n for (_, _), n in run.dropped_by_reason().items())
