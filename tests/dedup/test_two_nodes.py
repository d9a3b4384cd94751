"""The dedup stage on a two-node Ray cluster gives the same output as on one local Ray.

The cluster is this test's own: a head and a second node, each a `ray start --block` process in
its own process group on 127.0.0.1 with free ports and its own temp dir, 1 CPU each, stopped by
signalling those processes (never `ray stop`: it would stop every Ray on the machine). The
stage's work files lie under the run directory, which both nodes see (one machine: a shared
filesystem). Small units and 4 partitions make every wave several tasks, spread over both nodes.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import ROOT, write_jsonl
from dedup_corpus import planted_records
from ray_nodes import (
    HEAD_ENV,
    HEAD_PORTS,
    NODE_PORTS,
    RAY,
    RAY_JOIN,
    free_port,
    stop_node,
    wait_until_started,
)

RUN = [sys.executable, str(ROOT / "jobs" / "run.py")]
ENV = {**os.environ, **HEAD_ENV}
NODE_FLAGS = [
    "--block",
    "--node-ip-address=127.0.0.1",
    "--num-cpus=1",
    f"--object-store-memory={256 * 2**20}",
    "--disable-usage-stats",
]
ALIVE_NODES = (
    "import ray, sys; ray.init(address=sys.argv[1], logging_level='ERROR');"
    " print(len([n for n in ray.nodes() if n['Alive']]))"
)
# The dedup stage's plain Ray tasks (pipeline/dedup/stage.py, named "dedup.<step>"), a wave each.
DEDUP_TASKS = {"dedup.keys", "dedup.exact", "dedup.candidates", "dedup.verify", "dedup.decide"}

pytestmark = [pytest.mark.ray, pytest.mark.cli]  # `ray start` nodes, jobs/run.py


def start_node(command: list[str], temp_dir: Path, ports: tuple[str, ...]) -> subprocess.Popen:
    log = temp_dir / "node.log"
    return subprocess.Popen(
        [*command, f"--temp-dir={temp_dir}", *NODE_FLAGS, *(f"--{p}={free_port()}" for p in ports)],
        # SIGTERM drains the node first, by default waiting up to 30 s for idle workers.
        env={**ENV, "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "3"},
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_for_alive_nodes(address: str, expected: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        result = subprocess.run(
            [sys.executable, "-c", ALIVE_NODES, address],
            capture_output=True,
            text=True,
            env=ENV,
            timeout=timeout,
        )
        if result.stdout.strip() == str(expected):
            return
        if time.monotonic() > deadline:
            pytest.fail(f"{expected} nodes not alive: {result.stdout}{result.stderr[-2000:]}")
        time.sleep(1)


@pytest.fixture(scope="module")
def two_nodes():
    """A 1-CPU head and a 1-CPU second node on 127.0.0.1; short temp dirs (socket paths)."""
    dirs = [Path(tempfile.mkdtemp(prefix=f"dd2{k}-", dir="/tmp")) for k in ("h", "n")]
    gcs_port = free_port()
    address = f"127.0.0.1:{gcs_port}"
    nodes = []
    try:
        head = [RAY, "start", "--head", "--include-dashboard=false", f"--port={gcs_port}"]
        nodes.append(start_node(head, dirs[0], tuple(p for p in HEAD_PORTS if p != "port")))
        wait_until_started(nodes[0], dirs[0] / "node.log")
        nodes.append(start_node([*RAY_JOIN, "start", f"--address={address}"], dirs[1], NODE_PORTS))
        wait_until_started(nodes[1], dirs[1] / "node.log")
        wait_for_alive_nodes(address, 2)
        yield {"address": address, "head_dir": dirs[0], "node_dir": dirs[1]}
    finally:
        left = [proc for node in reversed(nodes) for proc in stop_node(node)]
        for directory in dirs:
            shutil.rmtree(directory, ignore_errors=True)
        assert not left, f"Ray processes left running: {[p.pid for p in left]}"


def start_run(corpus: Path, output_root: Path, *cluster: str) -> subprocess.Popen:
    """jobs/run.py with ingest and dedup on `corpus`, in the background (output in its logs)."""
    command = [
        *RUN, "corpus=jsonl", f"corpus.sources.main.paths=[{corpus}]", "run.stages=[ingest,dedup]",
        "run.progress=false", f"run.output_root={output_root}", "run.name=two_nodes",
        "dedup.unit_rows=20", "cluster.shuffle_partitions=4", *cluster,
    ]  # fmt: skip
    output_root.mkdir(parents=True)
    return subprocess.Popen(
        command,
        env=ENV,
        stdout=(output_root / "stdout.log").open("w"),
        stderr=(output_root / "stderr.log").open("w"),
        start_new_session=True,
    )


def finish_run(run: subprocess.Popen, output_root: Path) -> Path:
    """The run's directory once it has succeeded."""
    try:
        run.wait(timeout=600)
    finally:
        stop_node(run)  # its local Ray, should it still run
    logs = "".join((output_root / f"{n}.log").read_text()[-3000:] for n in ("stdout", "stderr"))
    assert run.returncode == 0, logs
    return output_root / "two_nodes"


def outputs(run_dir: Path) -> dict[str, list[tuple]]:
    """Every decision of the stage, as sorted rows (independent of file and row order)."""

    def rows(directory: Path, columns: list[str]) -> list[tuple]:
        table = pq.read_table(directory, columns=columns)
        return sorted(zip(*(table[c].to_pylist() for c in columns), strict=True), key=str)

    return {
        "kept": rows(run_dir / "dedup" / "data", ["doc_id", "partial_dup_of", "containment"]),
        "dropped": rows(run_dir / "quarantine" / "dedup", ["doc_id", "reason", "detail"]),
        "clusters": rows(
            run_dir / "dedup" / "clusters", ["cluster_id", "doc_id", "survivor", "is_survivor"]
        ),
    }


def tasks_run(temp_dir: Path) -> set[str]:
    """Names of the tasks that a node's workers ran: each worker's log names every task it
    starts (a ':task_name:' line, which is how Ray attributes output to a task)."""
    names = set()
    for log in temp_dir.glob("session_*/logs/worker-*"):
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith(":task_name:"):
                names.add(line.removeprefix(":task_name:").strip())
    return names


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict:
    """Several units of 20 documents: originals first, their copies in the last units."""
    records = planted_records(random.Random(11), originals=60, excerpt=slice(400, 880))
    path = write_jsonl(tmp_path_factory.mktemp("corpus") / "docs.jsonl", records)
    return {"path": path, "n": len(records)}


@pytest.fixture(scope="module")
def one_node(corpus, tmp_path_factory):
    """The same run on a local 2-CPU Ray, started before the cluster is (a shorter test)."""
    output_root = tmp_path_factory.mktemp("one") / "out"
    run = start_run(
        corpus["path"], output_root, "cluster.num_cpus=2", "cluster.include_dashboard=false"
    )
    try:
        yield run, output_root
    finally:
        stop_node(run)


@pytest.mark.slow
def test_two_nodes_dedup_like_one(corpus, one_node, two_nodes, tmp_path):
    address = f"cluster.address={two_nodes['address']}"
    on_two = outputs(
        finish_run(start_run(corpus["path"], tmp_path / "two", address), tmp_path / "two")
    )
    on_one = outputs(finish_run(*one_node))

    assert on_two == on_one
    # Not vacuous: the planted duplicates were found.
    kept = {doc_id: (of, containment) for doc_id, of, containment in on_two["kept"]}
    dropped = {doc_id: reason for doc_id, reason, _ in on_two["dropped"]}
    assert len(kept) + len(dropped) == corpus["n"]
    exact = {"main/dup-of-00", "main/dup-of-01-b", "main/dup-of-01-c", "main/one-word-again"}
    assert {d: r for d, r in dropped.items() if r == "exact_duplicate"}.keys() == exact
    near = {d for d, r in dropped.items() if r == "near_duplicate"}
    assert len(near) == 2
    assert len(near & {"main/doc-02", "main/near-of-02"}) == 1
    assert len(near & {"main/doc-03", "main/near-of-03"}) == 1
    of, containment = kept["main/excerpt-of-long"]
    assert of == "main/long" and containment >= 0.99
    assert {c[1] for c in on_two["clusters"]} >= exact | near
    # Both nodes ran dedup tasks (the head's workers and the second node's).
    for node in ("head_dir", "node_dir"):
        assert tasks_run(two_nodes[node]) & DEDUP_TASKS, f"no dedup task ran on {node}"
