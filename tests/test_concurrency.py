"""Concurrency: runs into different directories at once do not interfere; a second run into
the same directory refuses while the first holds it, and a killed holder blocks nobody."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import ROOT, make_config, write_jsonl

from pipeline import runner
from pipeline.config import SourceConfig
from pipeline.ingest.stage import IngestStage
from pipeline.runlock import LOCK_NAME, RunLocked, run_lock

HOLDER = """
import sys, time
from pathlib import Path
from pipeline.runlock import run_lock
with run_lock(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(600)
"""


def start_holder(run_dir: Path) -> subprocess.Popen:
    """Another process holding the run directory's lock (until killed)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(run_dir)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


def kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


def run_job(*overrides: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "jobs" / "run.py"), *overrides],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def ingest_overrides(data: Path, out: Path, name: str, *extra: str) -> list[str]:
    return [
        "corpus=jsonl",
        f"corpus.sources.main.paths=[{data}]",
        f"run.output_root={out}",
        f"run.name={name}",
        "run.stages=[ingest]",
        "run.progress=false",
        "cluster.num_cpus=1",
        *extra,
    ]


# --- the lock itself ----------------------------------------------------------------------


def test_a_second_holder_is_refused_with_the_first_ones_details(tmp_path):
    with run_lock(tmp_path):
        holder = json.loads((tmp_path / LOCK_NAME).read_text())
        assert holder["pid"] == os.getpid()
        with pytest.raises(RunLocked) as refused, run_lock(tmp_path):
            pass
    message = str(refused.value)
    assert f"pid {os.getpid()} on {holder['host']}, started {holder['started']}" in message
    assert str(tmp_path) in message and "run.name" in message


def test_the_lock_is_released_after_the_block_even_on_error(tmp_path):
    with pytest.raises(ValueError), run_lock(tmp_path):
        raise ValueError("a stage failed")
    with run_lock(tmp_path):
        pass
    assert (tmp_path / LOCK_NAME).read_text() == ""  # no stale holder for the next reader


def test_a_lock_left_by_a_killed_process_blocks_nobody(tmp_path):
    holder = start_holder(tmp_path)
    try:
        with pytest.raises(RunLocked, match=rf"pid {holder.pid} "), run_lock(tmp_path):
            pass
    finally:
        kill(holder)
    assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == holder.pid  # left behind
    with run_lock(tmp_path):  # ...and not in the way
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()


def test_the_runner_holds_the_lock_while_its_stages_run(ray_local, tmp_path, monkeypatch):
    seen = []

    class Probe(IngestStage):
        def run(self, ctx):
            try:
                with run_lock(ctx.run_dir):
                    seen.append("not locked")
            except RunLocked as e:
                seen.append(str(e))
            return super().run(ctx)

    monkeypatch.setitem(runner.STAGES, "ingest", Probe)
    data = write_jsonl(tmp_path / "in.jsonl", [{"id": 1, "text": "one"}])
    runner.run_pipeline(make_config({"main": SourceConfig(paths=[str(data)])}), tmp_path / "run")
    assert len(seen) == 1 and "is in use by another run" in seen[0]
    with run_lock(tmp_path / "run"):  # released at the end
        pass


def test_a_refused_run_writes_nothing(tmp_path):
    data = write_jsonl(tmp_path / "in.jsonl", [{"id": 1, "text": "one"}])
    run_dir = tmp_path / "run"
    holder = start_holder(run_dir)
    try:
        with pytest.raises(RunLocked):
            runner.run_pipeline(make_config({"main": SourceConfig(paths=[str(data)])}), run_dir)
    finally:
        kill(holder)
    assert sorted(p.name for p in run_dir.iterdir()) == [LOCK_NAME]


# --- through the command line -----------------------------------------------------------


@pytest.mark.slow
@pytest.mark.cli
@pytest.mark.ray
def test_a_second_run_into_the_same_directory_refuses_then_resumes(tmp_path):
    data = write_jsonl(tmp_path / "in.jsonl", [{"id": i, "text": f"doc {i}"} for i in range(50)])
    out = tmp_path / "out"
    holder = start_holder(out / "same")
    try:
        refused = run_job(*ingest_overrides(data, out, "same"))
        stdout, stderr = refused.communicate(timeout=300)
    finally:
        kill(holder)  # SIGKILL: the lock file stays, the lock does not
    assert refused.returncode == 3, stderr[-2000:]
    assert f"refused: {out / 'same'} is in use by another run (pid {holder.pid} on" in stderr
    assert "Traceback" not in stdout + stderr
    assert not (out / "same" / "ingest").exists() and not (out / "same" / "config.yaml").exists()

    again = run_job(*ingest_overrides(data, out, "same", "cluster.include_dashboard=false"))
    stdout, stderr = again.communicate(timeout=600)
    assert again.returncode == 0, stderr[-2000:]
    assert json.loads((out / "same" / "summary.json").read_text())["stages"][0]["rows_out"] == 50


@pytest.mark.slow
@pytest.mark.cli
@pytest.mark.ray
def test_two_runs_at_once_into_different_directories_do_not_interfere(tmp_path):
    """Each starts its own local Ray, dashboard included (the second takes the next port)."""
    corpora = {
        name: write_jsonl(
            tmp_path / f"{name}.jsonl",
            [{"id": i, "text": f"corpus {name} document {i}"} for i in range(n)],
        )
        for name, n in (("a", 300), ("b", 200))
    }
    out = tmp_path / "out"
    jobs = {name: run_job(*ingest_overrides(data, out, name)) for name, data in corpora.items()}
    results = {name: job.communicate(timeout=600) for name, job in jobs.items()}
    for name, job in jobs.items():
        assert job.returncode == 0, results[name][1][-3000:]
        assert "Traceback" not in "".join(results[name])
    for name, n in (("a", 300), ("b", 200)):
        (stats,) = json.loads((out / name / "summary.json").read_text())["stages"]
        assert (stats["rows_in"], stats["rows_out"]) == (n, n)
        docs = pq.read_table(out / name / "ingest" / "data").to_pylist()
        # The same doc ids in both corpora: every text here must be this run's own.
        assert sorted(int(d["doc_id"].split("/")[1]) for d in docs) == list(range(n))
        assert all(d["text"].startswith(f"corpus {name} ") for d in docs)
        assert all(d["path"] == str(corpora[name]) for d in docs)
