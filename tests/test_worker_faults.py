"""Worker faults: a Ray worker SIGKILLed in the middle of a stage costs time, not rows.

Each test runs a stage once cleanly and once while `WorkerKiller` kills a busy worker of
that stage, then compares the outputs row for row: nothing lost, nothing duplicated.
"""

from __future__ import annotations

import shutil

import pyarrow.parquet as pq
import pytest
from conftest import ROOT, local_model_config, make_config, write_jsonl
from faults import WorkerKiller

from pipeline import runner
from pipeline import schema as S
from pipeline.config import SourceConfig

pytestmark = pytest.mark.faults

NEWS = ROOT / "data" / "sample" / "news" / "lee_background.parquet"


@pytest.fixture(scope="module")
def news(tmp_path_factory):
    if not NEWS.exists():
        pytest.skip("sample corpus not built (make data)")
    rows = pq.read_table(NEWS).to_pylist()
    # Some documents twice, so dedup has clusters to find.
    records = [{"id": f"n{i}", "text": r["text"]} for i, r in enumerate(rows[:120])]
    records += [{"id": f"copy{i}", "text": r["text"]} for i, r in enumerate(rows[:10])]
    path = tmp_path_factory.mktemp("news") / "news.jsonl"
    return write_jsonl(path, records)


def sorted_rows(directory, key: str) -> list[dict]:
    if not directory.exists():
        return []
    return sorted(pq.read_table(directory).to_pylist(), key=lambda r: r[key])


def rerun_with_fault(clean_dir, faulty_dir, stage: str, config, title: str, after: float):
    """Reuse the clean run's upstream stages, then run `stage` again while killing a worker."""
    shutil.copytree(clean_dir, faulty_dir, ignore=shutil.ignore_patterns(stage))
    shutil.rmtree(faulty_dir / "quarantine" / stage, ignore_errors=True)
    with WorkerKiller(title=title, after=after) as killer:
        summary = runner.run_pipeline(config, faulty_dir)
    assert summary.skipped == config.run.stages[:-1]  # only the faulted stage ran again
    return killer, summary.stages[-1]


def test_dedup_survives_a_killed_worker(ray_local, news, tmp_path):
    config = make_config({"news": SourceConfig(paths=[str(news)])}, stages=("ingest", "dedup"))
    # Dedup's tasks are short (a few hundred ms each here): many small units, and the first
    # busy one is killed at once; Ray retries a task whose worker died, and every task
    # rewrites its own files whole.
    config.dedup.unit_rows = 16
    clean = runner.run_pipeline(config, tmp_path / "clean").stages[-1]
    killer, faulty = rerun_with_fault(
        tmp_path / "clean", tmp_path / "faulty", "dedup", config, title="dedup.", after=0.0
    )
    assert killer.killed, "no dedup worker was busy long enough to be killed"
    for sub in ("dedup/data", "dedup/clusters", "quarantine/dedup"):
        assert sorted_rows(tmp_path / "faulty" / sub, S.DOC_ID) == sorted_rows(
            tmp_path / "clean" / sub, S.DOC_ID
        ), sub
    assert (faulty.rows_in, faulty.rows_out, faulty.dropped) == (
        clean.rows_in,
        clean.rows_out,
        clean.dropped,
    )


@pytest.mark.vllm  # the CI tier's real-model test: vLLM in a Ray actor, generating
def test_rewrite_survives_a_killed_engine_actor(ray_local, news, tmp_path):
    config = make_config({"news": SourceConfig(paths=[str(news)])}, stages=("ingest", "rewrite"))
    config.model = local_model_config()
    config.rewrite.styles = ["summary"]
    config.rewrite.max_docs_per_source = 4
    config.rewrite.max_chunks_per_doc = 1
    config.rewrite.max_chunk_tokens = 128
    config.rewrite.sampling.max_tokens = 32
    config.rewrite.sampling.temperature = 0.0  # greedy: the retried batch must match the clean one
    config.rewrite.model_cache = str(ROOT / ".cache" / "models")
    config.rewrite.cache_dir = str(tmp_path / "clean-cache")
    clean = runner.run_pipeline(config, tmp_path / "clean").stages[-1]
    # A cache of its own: the faulty run must really generate, be killed, and generate again.
    config.rewrite.cache_dir = str(tmp_path / "faulty-cache")
    killer, faulty = rerun_with_fault(
        tmp_path / "clean", tmp_path / "faulty", "rewrite", config, "RewriteActor)).submit", 1.0
    )
    assert killer.killed, "the rewrite actor was never caught generating"
    got = sorted_rows(tmp_path / "faulty" / "rewrite" / "data", S.REWRITE_ID)
    want = sorted_rows(tmp_path / "clean" / "rewrite" / "data", S.REWRITE_ID)
    assert want, "no rewrite was kept: the comparison below would hold no generated text"
    assert [r[S.REWRITE_ID] for r in got] == [r[S.REWRITE_ID] for r in want]
    assert [r[S.TEXT] for r in got] == [r[S.TEXT] for r in want]
    assert (faulty.rows_in, faulty.rows_out, faulty.dropped) == (
        clean.rows_in,
        clean.rows_out,
        clean.dropped,
    )


def test_tokenize_survives_a_killed_worker(ray_local, news, tmp_path):
    config = make_config({"news": SourceConfig(paths=[str(news)])}, stages=("ingest", "tokenize"))
    config.rewrite.model_cache = str(ROOT / ".cache" / "models")
    runner.run_pipeline(config, tmp_path / "clean")
    killer, _ = rerun_with_fault(
        tmp_path / "clean", tmp_path / "faulty", "tokenize", config, title="", after=0.2
    )
    assert killer.killed, "no tokenize worker was busy long enough to be killed"
    clean = tmp_path / "clean" / "tokenize" / "data"
    shards = sorted(p for p in clean.rglob("*") if p.is_file())  # lineage/ tables included
    assert any(p.suffix == ".arrow" for p in shards)
    assert any(p.parent.name == "lineage" for p in shards)
    for path in shards:
        twin = tmp_path / "faulty" / "tokenize" / "data" / path.relative_to(clean)
        assert twin.read_bytes() == path.read_bytes(), path.name
