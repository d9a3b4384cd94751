"""The dedup stage end to end on Ray: planted exact, near and partial duplicates are found,
every row is accounted for, and deduplicating the output finds nothing more."""

from __future__ import annotations

import random

import pyarrow.parquet as pq
import pytest
from conftest import make_config, write_jsonl
from dedup_corpus import planted_records

from pipeline import runner
from pipeline.config import SourceConfig


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    root = tmp_path_factory.mktemp("planted")
    records = planted_records(random.Random(7))
    path = write_jsonl(root / "docs.jsonl", records)
    return {"path": path, "n": len(records)}


def run(tmp_path, path, run_name="dd", shuffle_partitions=None, **dedup):
    config = make_config({"web": SourceConfig(paths=[str(path)])}, run_name=run_name)
    config.run.stages = ["ingest", "dedup"]
    config.cluster.shuffle_partitions = shuffle_partitions
    for key, value in dedup.items():
        if key == "containment_action":
            config.dedup.containment.action = value
        else:
            setattr(config.dedup, key, value)
    run_dir = tmp_path / run_name
    summary = runner.run_pipeline(config, run_dir)
    return run_dir, summary.stages[-1]


def rows(directory):
    return pq.read_table(directory).to_pylist() if directory.exists() else []


@pytest.fixture(scope="module")
def planted_run(ray_local, planted, tmp_path_factory):
    return run(tmp_path_factory.mktemp("runs"), planted["path"])


def test_planted_duplicates_are_found_and_accounted_for(planted, planted_run):
    run_dir, stats = planted_run
    assert stats.rows_in == planted["n"] == stats.rows_out + stats.rows_dropped
    dropped = {r["doc_id"]: r for r in rows(run_dir / "quarantine" / "dedup")}
    # Same text, same length: the smaller id survives.
    assert dropped["web/dup-of-00"]["reason"] == "exact_duplicate"
    assert "same text as web/doc-00" in dropped["web/dup-of-00"]["detail"]
    assert {"web/dup-of-01-b", "web/dup-of-01-c"} <= set(dropped)
    assert dropped["web/one-word-again"]["reason"] == "exact_duplicate"
    near = {d for d, r in dropped.items() if r["reason"] == "near_duplicate"}
    # The longer of each edited pair survives: exactly one of each pair goes.
    assert len(near) == 2
    assert len(near & {"web/doc-02", "web/near-of-02"}) == 1
    assert len(near & {"web/doc-03", "web/near-of-03"}) == 1
    kept = {r["doc_id"]: r for r in rows(run_dir / "dedup" / "data")}
    excerpt = kept["web/excerpt-of-long"]
    assert excerpt["partial_dup_of"] == "web/long" and excerpt["containment"] >= 0.99
    assert "web/cyrillic" in kept and "web/cjk" in kept
    clusters = rows(run_dir / "dedup" / "clusters")
    near_rows = [c for c in clusters if c["kind"] == "near"]
    assert {c["doc_id"] for c in near_rows} >= near
    assert all(0.7 <= c["similarity"] <= 1.0 for c in near_rows)
    assert stats.extra["exact_duplicates"] == 4 and stats.extra["near_duplicates"] == 2
    assert stats.extra["cluster_size_histogram"]["exact"] == {"2": 2, "3-4": 1}


def test_distributed_components_and_signature_verify_agree(planted_run, planted, tmp_path):
    """Above `local_components_max_edges` the star rounds on Ray Data find the components;
    `verify=estimate` trusts the signatures. On clear-cut plants both match the default run."""
    default_dir, _ = planted_run
    run_dir, stats = run(
        tmp_path, planted["path"], run_name="other", local_components_max_edges=0,
        verify="estimate", unit_rows=8, shuffle_partitions=3,
    )  # fmt: skip
    assert stats.extra["components"] == "distributed" and stats.extra["components_rounds"] >= 1
    for sub in ("dedup/data", "quarantine/dedup", "dedup/clusters"):
        ours = sorted(
            (r["doc_id"], r.get("reason"), r.get("cluster_id"), r.get("partial_dup_of"))
            for r in rows(run_dir / sub)
        )
        assert ours == sorted(
            (r["doc_id"], r.get("reason"), r.get("cluster_id"), r.get("partial_dup_of"))
            for r in rows(default_dir / sub)
        ), sub


def test_dedup_of_the_output_finds_nothing_more(planted_run, tmp_path):
    run_dir, _ = planted_run
    unique = [{"id": r["doc_id"], "text": r["text"]} for r in rows(run_dir / "dedup" / "data")]
    again = write_jsonl(tmp_path / "again.jsonl", unique)
    _, stats = run(tmp_path, again, run_name="second")
    assert stats.dropped == {} and stats.rows_out == len(unique)


def test_partial_duplicates_can_be_removed(ray_local, planted, tmp_path):
    run_dir, stats = run(tmp_path, planted["path"], containment_action="remove")
    dropped = {r["doc_id"]: r for r in rows(run_dir / "quarantine" / "dedup")}
    assert dropped["web/excerpt-of-long"]["reason"] == "partial_duplicate"
    assert "contained in web/long" in dropped["web/excerpt-of-long"]["detail"]
    assert stats.rows_in == stats.rows_out + stats.rows_dropped


def test_a_corpus_of_identical_documents_keeps_one(ray_local, tmp_path):
    path = write_jsonl(
        tmp_path / "same.jsonl", [{"id": f"d{i}", "text": "same words here"} for i in range(6)]
    )
    run_dir, stats = run(tmp_path, path, run_name="same")
    assert stats.rows_out == 1 and stats.dropped == {"exact_duplicate": 5}
    assert rows(run_dir / "dedup" / "data")[0]["doc_id"] == "web/d0"


def test_a_single_document_passes_through(ray_local, tmp_path):
    path = write_jsonl(tmp_path / "one.jsonl", [{"id": "only", "text": "a lone document"}])
    _, stats = run(tmp_path, path, run_name="one")
    assert stats.rows_in == 1 and stats.rows_out == 1 and stats.dropped == {}


def test_no_documents_at_all(ray_local, tmp_path):
    path = write_jsonl(tmp_path / "bad.jsonl", [b"not json", b"{}"])
    _, stats = run(tmp_path, path, run_name="empty")
    assert stats.rows_in == 0 and stats.rows_out == 0
