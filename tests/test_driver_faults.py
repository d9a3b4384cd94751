"""Driver faults: the job is SIGKILLed at three points and rerun; the result is byte-identical.

The driver (`jobs/run.py`) runs in its own process group with its local Ray; killing the
group is a machine losing power under the job: no clean-up, no atexit, half-written files.
Kill points: in the middle of dedup, in the middle of rewrite once some generations are in
the cache, and in the middle of tokenize. Each rerun of the same run name must skip what
was finished, reuse the cached generations, and the final shards and manifest must equal,
byte for byte, those of a run that was never interrupted.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import ROOT, write_jsonl

from pipeline import schema as S
from pipeline.rewrite.cache import FILE_NAME as CACHE_FILE
from pipeline.tokens.lineage import LINEAGE_SUFFIX

# jobs/run.py in a subprocess: a local Ray, and the rewrite stage on the real model.
pytestmark = [pytest.mark.faults, pytest.mark.ray, pytest.mark.vllm, pytest.mark.cli]

NEWS = ROOT / "data" / "sample" / "news" / "lee_background.parquet"
STAGES = "[ingest,dedup,rewrite,tokenize]"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    if not NEWS.exists():
        pytest.skip("sample corpus not built (make data)")
    rows = pq.read_table(NEWS).to_pylist()[:40]
    path = tmp_path_factory.mktemp("news") / "news.jsonl"
    return write_jsonl(path, [{"id": r["id"], "text": r["text"]} for r in rows])


def command(corpus: Path, root: Path, name: str, cache: Path, progress: bool = False) -> list[str]:
    return [
        sys.executable,
        str(ROOT / "jobs" / "run.py"),
        f"run.name={name}",
        f"run.output_root={root}",
        f"run.stages={STAGES}",
        f"run.progress={str(progress).lower()}",
        "hydra.verbose=pipeline",  # the steps' start lines (DEBUG), which the kills wait for
        "corpus=jsonl",
        f"corpus.sources.main.paths=[{corpus}]",
        "cluster.include_dashboard=false",
        "rewrite.styles=[summary]",
        "rewrite.max_docs_per_source=4",
        "rewrite.max_chunks_per_doc=1",
        # Short chunks and samples, two attempts at most: the kills need a rewrite in progress,
        # not a long one (the CI tier's time: 3 engine starts and 2 rewrites of the corpus in
        # this test). A 64-token summary of a 64-token chunk can end before max_tokens: the gate
        # kept 2 of these 4 chunks (the other two truncated twice), where 32 tokens of a
        # 128-token chunk kept none, and the shards compared below held no rewrite at all.
        "rewrite.max_chunk_tokens=64",
        "rewrite.sampling.max_tokens=64",
        "rewrite.max_attempts=2",
        f"rewrite.cache_dir={cache}",
        f"rewrite.model_cache={ROOT / '.cache' / 'models'}",
    ]


def cached_generations(cache: Path) -> int:
    db = cache / CACHE_FILE
    if not db.exists():
        return 0
    try:
        # Not mode=ro: a read-only connection cannot open a database in WAL mode while the
        # writer holds it (it needs the shared-memory file), and would read as empty.
        conn = sqlite3.connect(db, timeout=1)
        try:
            return conn.execute("SELECT count(*) FROM generations").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


def run_until(cmd: list[str], trigger, timeout: float = 900) -> tuple[bool, str]:
    """Run the job; SIGKILL its whole process group as soon as trigger(log so far) holds.
    Returns (killed, log)."""
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    log: list[str] = []
    reader = threading.Thread(target=lambda: log.extend(proc.stdout), daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    killed = False
    while proc.poll() is None and time.monotonic() < deadline:
        if trigger is not None and trigger("".join(log)):
            os.killpg(proc.pid, signal.SIGKILL)
            killed = True
            break
        time.sleep(0.1)
    if proc.poll() is None and not killed:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail("the job did not finish in time:\n" + "".join(log)[-3000:])
    proc.wait()
    reader.join(timeout=10)
    text = "".join(log)
    if not killed:
        assert proc.returncode == 0, text[-3000:]
    return killed, text


def after(marker: str, seconds: float):
    """A trigger: `seconds` after `marker` first appears in the log."""
    seen: list[float] = []

    def trigger(log: str) -> bool:
        if marker in log and not seen:
            seen.append(time.monotonic())
        return bool(seen) and time.monotonic() - seen[0] >= seconds

    return trigger


def rewrites_in_shards(run_dir: Path) -> int:
    """Shard rows whose text is a rewrite, from the lineage tables beside the shards."""
    data = run_dir / "tokenize" / "data"
    tables = [pq.read_table(p, columns=[S.KIND]) for p in data.rglob(f"*{LINEAGE_SUFFIX}")]
    return sum(t.column(S.KIND).to_pylist().count(S.KIND_REWRITE) for t in tables)


def shard_bytes(run_dir: Path) -> dict[str, bytes]:
    data = run_dir / "tokenize" / "data"  # shards, manifest and the lineage/ tables
    return {p.relative_to(data).as_posix(): p.read_bytes() for p in data.rglob("*") if p.is_file()}


def test_killed_three_times_then_resumed_gives_identical_shards(corpus, tmp_path):
    clean_cache, cache = tmp_path / "clean-cache", tmp_path / "cache"
    # Progress on, as a user's job has it; piped, as in CI: no progress bar (tqdm's redrawn
    # lines from Ray Data's Parquet sampling or transformers) reaches the console.
    _, log = run_until(command(corpus, tmp_path, "clean", clean_cache, progress=True), None)
    assert "%|" not in log and "it/s]" not in log, log[-3000:]
    # The comparison at the end covers rewritten text only if some reached the shards.
    assert rewrites_in_shards(tmp_path / "clean") > 0

    cmd = command(corpus, tmp_path, "killed", cache)
    run_dir = tmp_path / "killed"
    # 1. in the middle of dedup: once its first wave of tasks (keys) has started (the whole
    # stage takes about a second here, so a fixed delay after "running" may miss it)
    killed, _ = run_until(cmd, after("dedup: keys ...", 0.2))
    assert killed and not (run_dir / "dedup" / "_SUCCESS").exists()
    # 2. in the middle of rewrite, once the first generations are in the cache
    killed, log = run_until(cmd, lambda log: cached_generations(cache) > 0)
    assert killed and "ingest: already complete" in log
    assert (run_dir / "dedup" / "_SUCCESS").exists()
    assert not (run_dir / "rewrite" / "_SUCCESS").exists()
    done_before_kill = cached_generations(cache)
    # 3. in the middle of tokenize
    killed, log = run_until(cmd, after("tokenize: running", 0.5))
    assert killed and "dedup: already complete" in log
    rewrite_stats = json.loads((run_dir / "rewrite" / "stats.json").read_text())
    hits = rewrite_stats["extra"]["cache_hit_rate"] * rewrite_stats["extra"]["generation_requests"]
    assert round(hits) >= done_before_kill > 0  # what was generated before the kill is reused
    # 4. to the end
    _, log = run_until(cmd, None)
    assert "rewrite: already complete" in log
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["skipped"] == ["ingest", "dedup", "rewrite"]

    got, want = shard_bytes(run_dir), shard_bytes(tmp_path / "clean")
    assert "manifest.json" in want and any(n.endswith(".arrow") for n in want)
    assert got.keys() == want.keys()
    for name in want:
        assert got[name] == want[name], f"{name} differs from the uninterrupted run's"
