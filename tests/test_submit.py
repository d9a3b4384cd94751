"""jobs/submit.py: what ships, what runs, and a real submission to a Ray head on 127.0.0.1.

The head is this test's own (`ray start --head --block` in its own process group, free ports,
its own temp dir) and is stopped by signalling that process: `ray stop` would stop every Ray
on the machine, the test session's and other users' included.
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pyarrow.parquet as pq
import pytest
from conftest import ROOT, write_jsonl
from ray_nodes import HEAD_ENV, HEAD_PORTS, RAY, free_port, stop_node

spec = importlib.util.spec_from_file_location("submit", ROOT / "jobs" / "submit.py")
submit = importlib.util.module_from_spec(spec)
spec.loader.exec_module(submit)

SUBMIT = [sys.executable, str(ROOT / "jobs" / "submit.py")]


def make_working_dir(root: Path) -> Path:
    """A repository-shaped directory: sources, .gitignore, a sample corpus and things to leave."""
    root.mkdir(parents=True, exist_ok=True)
    for name in (".gitignore", "pyproject.toml"):
        shutil.copy(ROOT / name, root / name)
    for name in ("pipeline", "jobs", "conf"):
        shutil.copytree(ROOT / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    for heavy in (".venv/lib/x.py", ".cache/models/w.bin", "outputs/old/summary.json",
                  "data/private/big.jsonl", "pipeline/__pycache__/x.pyc"):  # fmt: skip
        (root / heavy).parent.mkdir(parents=True, exist_ok=True)
        (root / heavy).write_text("not to be shipped")
    return root


def test_ships_sources_and_sample_but_not_environments_caches_or_outputs(tmp_path):
    root = make_working_dir(tmp_path)
    (root / "data" / "sample" / "news").mkdir(parents=True)
    (root / "data" / "sample" / "news" / "a.jsonl").write_text('{"text": "x"}\n')

    shipped = {str(p) for p in submit.shipped_files(root, submit.working_dir_excludes(root))}
    assert "data/sample/news/a.jsonl" in shipped
    assert {"jobs/run.py", "jobs/submit.py", "pipeline/runner.py", "conf/config.yaml"} <= shipped
    assert not any(p.startswith((".venv", ".cache", "outputs", "data/private")) for p in shipped)
    assert not any("__pycache__" in p for p in shipped)

    without = submit.shipped_files(root, submit.working_dir_excludes(root, ship_sample=False))
    assert not any(str(p).startswith("data") for p in without)


def test_the_repository_ships_small():
    files = submit.shipped_files(ROOT, submit.working_dir_excludes(ROOT))
    size = sum((ROOT / f).stat().st_size for f in files)
    # Ray refuses a working-dir package over 512 MiB; the sources and sample are a few MiB.
    assert size < 50 * 2**20, f"{size / 2**20:.0f} MiB would ship"
    assert Path("jobs/run.py") in files


def test_job_runs_the_pipeline_on_the_cluster_with_a_known_run_name():
    overrides = submit.job_overrides(["corpus.batch_rows=64"], "submit-1")
    assert overrides == ["cluster=remote", "run.name=submit-1", "corpus.batch_rows=64"]
    assert submit.job_overrides(["run.name=mine", "cluster=local"], "x") == [
        "run.name=mine",
        "cluster=local",
    ]
    # jobs/train.py's run.name names the run to train on: never invented.
    assert submit.job_overrides([], "x", "jobs/train.py") == ["cluster=remote"]
    command = submit.entrypoint(["corpus.sources.main.paths=[a b/*.jsonl]"])
    assert command == "python jobs/run.py 'corpus.sources.main.paths=[a b/*.jsonl]'"
    assert submit.override_value(["run.name=a", "x=1", "run.name=b"], "run.name") == "b"


def test_run_directory_is_read_from_the_job_log():
    logs = "stage ...\n\nrun directory: /shared/out/exp1\n  stage outputs: ...\n"
    assert submit.run_dirs(logs) == ["/shared/out/exp1"]
    assert submit.run_dirs("\ntraining directory: /o/exp1/train\n") == ["/o/exp1/train"]
    assert submit.run_dirs("config error:\n  corpus.sources: no source configured\n") == []


@pytest.mark.cli
def test_unreachable_address_is_a_clear_error_not_a_traceback():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = subprocess.run(
        [*SUBMIT, "--address", f"http://127.0.0.1:{port}", "--", "run.name=x"],
        capture_output=True,
        text=True,
        env={**os.environ, **HEAD_ENV},
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert f"could not submit to http://127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def wait_for_dashboard(address: str, head: subprocess.Popen, log: Path) -> None:
    from ray.job_submission import JobSubmissionClient

    deadline = time.monotonic() + 120
    while True:
        if head.poll() is not None:
            pytest.fail(f"ray start exited {head.returncode}:\n{log.read_text()[-3000:]}")
        try:
            JobSubmissionClient(address)
            return
        except ConnectionError:
            if time.monotonic() > deadline:
                pytest.fail(f"no dashboard at {address}:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)


@pytest.fixture(scope="module")
def ray_head():
    """A 2-CPU Ray head on loopback, free ports, own temp dir (short: socket paths <108 chars)."""
    temp_dir = Path(tempfile.mkdtemp(prefix="rsub-", dir="/tmp"))
    ports = {name: free_port() for name in HEAD_PORTS}
    log = temp_dir / "head.log"
    command = [
        RAY, "start", "--head", "--block",
        "--node-ip-address=127.0.0.1", "--dashboard-host=127.0.0.1", "--num-cpus=2",
        f"--temp-dir={temp_dir}", "--disable-usage-stats",
        *(f"--{name}={port}" for name, port in ports.items()),
    ]  # fmt: skip
    # The job's `python` is this interpreter: the head's PATH leads to it.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    head = subprocess.Popen(
        command,
        # SIGTERM drains the node before stopping it, by default waiting up to 30 s for idle
        # workers to hand back their leases; a test head has nothing worth waiting for.
        env={**os.environ, **HEAD_ENV, "PATH": path, "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "3"},
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    address = f"http://127.0.0.1:{ports['dashboard-port']}"
    try:
        wait_for_dashboard(address, head, log)
        yield {"address": address, "pid": head.pid}
    finally:
        left = stop_node(head)
        shutil.rmtree(temp_dir, ignore_errors=True)
        assert not left, f"head processes left running: {[p.pid for p in left]}"


def head_listening_addresses(pid: int) -> set[str]:
    procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    addresses = set()
    for proc in procs:
        try:
            conns = proc.net_connections(kind="inet")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        addresses |= {c.laddr.ip for c in conns if c.status == psutil.CONN_LISTEN}
    return addresses


def tiny_corpus(path: Path) -> dict:
    """12 documents, 3 exact copies, 1 near copy (one word changed), 1 broken line."""
    rng = random.Random(7)
    words = [f"w{i}" for i in range(400)]
    docs = [" ".join(rng.choice(words) for _ in range(200)) for _ in range(12)]
    near = docs[1].split()
    near[100] = "changed"
    records = [{"id": f"d{i}", "text": t} for i, t in enumerate(docs)]
    records += [{"id": f"copy{i}", "text": docs[i]} for i in range(3)]
    records += [{"id": "near1", "text": " ".join(near)}, b'{"id": "broken", "text": ']
    write_jsonl(path, records)
    return {"records": len(records), "exact": 3, "near": 1, "invalid_json": 1}


@pytest.mark.slow
@pytest.mark.cli
@pytest.mark.ray
def test_submitted_run_writes_its_outputs_and_reports_the_run_dir(ray_head, tmp_path):
    assert head_listening_addresses(ray_head["pid"]) <= {"127.0.0.1", "::ffff:127.0.0.1"}
    work = make_working_dir(tmp_path / "repo")
    # Under data/sample: ignored by .gitignore, shipped by submit.py, found by a relative path.
    expected = tiny_corpus(work / "data" / "sample" / "tiny.jsonl")
    out = tmp_path / "outputs"
    result = subprocess.run(
        [*SUBMIT, "--address", ray_head["address"], "--working-dir", str(work), "--",
         "corpus=jsonl", "corpus.sources.main.paths=[data/sample/tiny.jsonl]",
         "run.stages=[ingest,dedup]", "run.progress=false", "dedup.containment.enabled=false",
         # On a 2-CPU head the pull-based sort shuffle runs a groupby in ~0.3 s, the remote
         # preset's hash shuffle in 1-5 s (ClusterConfig.shuffle_strategy).
         "cluster.shuffle_strategy=sort_shuffle_pull_based",
         f"run.output_root={out}", "run.name=submitted"],
        capture_output=True, text=True, env={**os.environ, **HEAD_ENV}, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    run_dir = out / "submitted"
    assert f"run directory (on the cluster): {run_dir}" in result.stderr
    assert "SUCCEEDED" in result.stderr
    assert "exact_duplicate" in result.stdout  # the job's summary table, streamed

    summary = json.loads((run_dir / "summary.json").read_text())
    ingest, dedup = summary["stages"]
    for stats in (ingest, dedup):
        assert stats["rows_in"] == stats["rows_out"] + sum(stats["dropped"].values()), stats
    assert ingest["rows_in"] == expected["records"]
    assert ingest["dropped"] == {"invalid_json": expected["invalid_json"]}
    assert dedup["rows_in"] == ingest["rows_out"]
    assert dedup["dropped"] == {"exact_duplicate": expected["exact"], "near_duplicate": 1}
    print("stage seconds:", {s["stage"]: s["seconds"] for s in summary["stages"]})
    kept = pq.read_table(run_dir / "dedup" / "data")
    dropped = pq.read_table(run_dir / "quarantine" / "dedup")
    assert kept.num_rows == dedup["rows_out"] == 12
    assert dropped.num_rows == 4


@pytest.mark.slow
@pytest.mark.cli
@pytest.mark.ray
def test_failed_job_exits_nonzero_with_the_jobs_own_message(ray_head, tmp_path):
    result = subprocess.run(
        [*SUBMIT, "--address", ray_head["address"], "--no-sample", "--", "corpus=jsonl",
         "corpus.sources.main.paths=[/nonexistent/*.jsonl]", f"run.output_root={tmp_path}"],
        capture_output=True, text=True, env={**os.environ, **HEAD_ENV}, timeout=300,
    )  # fmt: skip
    assert result.returncode == 1
    assert "corpus.sources.main.paths: no file matches '/nonexistent/*.jsonl'" in result.stdout
    assert "FAILED" in result.stderr
