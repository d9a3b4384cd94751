"""Hostile input: every record is kept or quarantined with its reason, or the job refuses
with a message naming the path; never a traceback, and the accounting identity holds.

The corpus (tests/hostile_corpus.py) holds ~30 kinds of bad input; each kind states the rows
it must produce. The same corpus goes through the reader alone (no Ray), the runner, and the
command line (`jobs/run.py`), and the three must agree.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import make_config
from hostile_corpus import KEPT, build, jl
from run_job import run_job, run_job_in_process

from pipeline import runner
from pipeline import schema as S
from pipeline.config import CorpusConfig, SourceConfig
from pipeline.ingest import compression
from pipeline.ingest.files import FileIngest, plan_files
from pipeline.ingest.readers import Reason

REASONS = {v for k, v in vars(Reason).items() if k.isupper()}
# Kinds decided after all files are read (doc ids) or when planning (which files): the
# reader alone cannot show them.
NOT_READER_LEVEL = {"duplicate_ids", "directory_loop", "directory_named_jsonl"}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    return root, build(root)


def source(root: Path) -> SourceConfig:
    return SourceConfig(paths=[f"{root}/**/*"])


def counts(rows: list[dict], files: list[Path]) -> dict[str, int]:
    wanted = {str(f) for f in files}
    return dict(Counter(r.get(S.DROP_REASON) or KEPT for r in rows if r[S.PATH] in wanted))


def read_rows(directory: Path) -> list[dict]:
    return pq.read_table(directory).to_pylist() if directory.exists() else []


def test_the_corpus_has_at_least_15_kinds(hostile):
    _, kinds = hostile
    assert len(kinds) >= 15
    assert len({k.name for k in kinds}) == len(kinds)


def test_each_kind_through_the_reader_alone(hostile):
    """FileIngest, file by file, no Ray: the reader-level outcome of every kind."""
    root, kinds = hostile
    corpus = CorpusConfig(name="h", sources={"h": source(root)})
    tasks = {task.path: task for task in plan_files(corpus)}
    wrong = {}
    for kind in kinds:
        if kind.name in NOT_READER_LEVEL:
            continue
        rows = []
        for path in kind.files:
            for batch in FileIngest(tasks[str(path)], corpus).batches():
                rows += batch.to_pylist()
        if (got := counts(rows, kind.files)) != kind.expected:
            wrong[kind.name] = {"expected": kind.expected, "got": got}
    assert not wrong


@pytest.fixture(scope="module")
def hostile_run(ray_local, hostile, tmp_path_factory):
    root, _ = hostile
    run_dir = tmp_path_factory.mktemp("runs") / "hostile"
    escape_target = Path("/tmp/escaped")
    existed = escape_target.exists()
    summary = runner.run_pipeline(make_config({"h": source(root)}), run_dir)
    return run_dir, summary.stages[0], existed or not escape_target.exists()


def test_every_kind_has_its_outcome(hostile, hostile_run):
    _, kinds = hostile
    run_dir, _, _ = hostile_run
    rows = read_rows(run_dir / "ingest" / "data") + read_rows(run_dir / "quarantine" / "ingest")
    wrong = {
        k.name: {"expected": k.expected, "got": got}
        for k in kinds
        if (got := counts(rows, k.files)) != k.expected
    }
    assert not wrong
    # Nothing from anywhere else, and no file twice under another route (the directory loop).
    known = {str(f) for k in kinds for f in k.files}
    assert {r[S.PATH] for r in rows} <= known


def test_accounting_identity_and_no_row_lost(hostile, hostile_run):
    _, kinds = hostile
    run_dir, stats, _ = hostile_run
    kept = read_rows(run_dir / "ingest" / "data")
    dropped = read_rows(run_dir / "quarantine" / "ingest")
    assert stats.rows_in == stats.rows_out + stats.rows_dropped
    assert (len(kept), len(dropped)) == (stats.rows_out, stats.rows_dropped)
    assert stats.rows_in == sum(k.rows for k in kinds)  # rows lost: 0
    assert dict(Counter(r[S.DROP_REASON] for r in dropped)) == stats.dropped
    assert len({r[S.DOC_ID] for r in kept}) == len(kept)  # one document per doc_id


def test_quarantined_rows_say_where_and_why(hostile_run):
    run_dir, _, _ = hostile_run
    for row in read_rows(run_dir / "quarantine" / "ingest"):
        assert row[S.DROP_REASON] in REASONS
        assert row[S.PATH] and row[S.DROP_DETAIL], row


def test_duplicate_ids_keep_the_first_and_name_it(hostile, hostile_run):
    root, _ = hostile
    run_dir, _, _ = hostile_run
    kept = {r[S.DOC_ID]: r for r in read_rows(run_dir / "ingest" / "data")}
    assert kept["h/d1"]["text"] == "first d1" and kept["h/7"]["text"] == "int seven"
    dups = [
        r
        for r in read_rows(run_dir / "quarantine" / "ingest")
        if r[S.DROP_REASON] == Reason.DUPLICATE_ID
    ]
    by_text = {r[S.TEXT]: r for r in dups}
    assert set(by_text) == {"second d1", "third d1", "str seven", "same", "no id, same text"}
    assert (
        by_text["third d1"][S.DROP_DETAIL] == f"doc_id 'h/d1' is taken by {root}/dup_a.jsonl at 1"
    )


def test_hostile_ids_stay_ids_and_write_nothing_outside_the_run(hostile_run):
    run_dir, _, nothing_escaped = hostile_run
    kept = {r[S.DOC_ID] for r in read_rows(run_dir / "ingest" / "data")}
    assert {"h/../../../../tmp/escaped", "h//etc/passwd", "h/..", "h/nul\x00id"} <= kept
    assert nothing_escaped
    for path in run_dir.rglob("*"):
        assert path.resolve().is_relative_to(run_dir.resolve())
        assert "escaped" not in path.name and "passwd" not in path.name


def test_permission_denied_is_quarantined(tmp_path, monkeypatch):
    """What chmod 000 does for a user who is not root (root reads any file)."""
    path = tmp_path / "locked.jsonl"
    path.write_bytes(jl({"id": "a", "text": "secret"}))

    def denied(file, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(file))

    monkeypatch.setattr(compression, "open", denied, raising=False)
    corpus = CorpusConfig(name="h", sources={"h": SourceConfig(paths=[str(path)])})
    (task,) = plan_files(corpus)
    (row,) = [r for b in FileIngest(task, corpus).batches() for r in b.to_pylist()]
    assert row[S.DROP_REASON] == Reason.UNREADABLE_FILE
    assert "Permission denied" in row[S.DROP_DETAIL] and row[S.PATH] == str(path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_chmod_000_is_quarantined(tmp_path):
    path = tmp_path / "locked.jsonl"
    path.write_bytes(jl({"id": "a", "text": "secret"}))
    path.chmod(0)
    corpus = CorpusConfig(name="h", sources={"h": SourceConfig(paths=[str(path)])})
    (task,) = plan_files(corpus)
    (row,) = [r for b in FileIngest(task, corpus).batches() for r in b.to_pylist()]
    assert row[S.DROP_REASON] == Reason.UNREADABLE_FILE


# --- the command line -------------------------------------------------------------------


def cli_overrides(paths: str, out: Path, name: str) -> list[str]:
    return [
        "corpus=jsonl",
        f"corpus.sources.main.paths=[{paths}]",
        "corpus.sources.main.format=auto",
        f"run.output_root={out}",
        f"run.name={name}",
        "run.stages=[ingest]",
        "run.progress=false",
        "cluster.include_dashboard=false",
        "cluster.num_cpus=2",
    ]


# Full tier: the same run as hostile_run's, through jobs/run.py with a Ray of its own (~15 s); the
# CI tier checks the command line's refusals here and a whole job in test_driver_faults.py.
@pytest.mark.slow
@pytest.mark.cli
def test_the_command_line_agrees_and_shows_no_traceback(hostile, hostile_run, tmp_path):
    root, _ = hostile
    _, stats, _ = hostile_run
    result = run_job(*cli_overrides(f"{root}/**/*", tmp_path, "cli"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stdout + result.stderr
    (cli,) = json.loads((tmp_path / "cli" / "summary.json").read_text())["stages"]
    assert (cli["rows_in"], cli["rows_out"], cli["dropped"]) == (
        stats.rows_in,
        stats.rows_out,
        stats.dropped,
    )


def _directory(tmp: Path) -> Path:
    (tmp / "x.jsonl").mkdir()
    return tmp / "x.jsonl"


def _loop(tmp: Path) -> Path:
    (tmp / "a.jsonl").symlink_to(tmp / "b.jsonl")
    (tmp / "b.jsonl").symlink_to(tmp / "a.jsonl")
    return tmp / "a.jsonl"


def _fifo(tmp: Path) -> Path:
    os.mkfifo(tmp / "pipe.jsonl")
    return tmp / "pipe.jsonl"


def _missing(tmp: Path) -> Path:
    return tmp / "missing.jsonl"


def refuses_naming_the_path(run, make, tmp_path: Path) -> None:
    path = make(tmp_path)
    result = run(*cli_overrides(str(path), tmp_path / "out", "refused"))
    assert result.returncode == 2
    assert "config error" in result.stderr and str(path) in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert not (tmp_path / "out" / "refused" / "ingest").exists()


# In process (tests/run_job.py): jobs/run.py's entry point and error printing without seconds
# of imports per kind; one kind also runs as a command.
@pytest.mark.parametrize(
    "make",
    [_directory, _loop, _fifo, _missing],
    ids=["directory", "symlink_loop", "fifo", "missing"],
)
def test_a_source_with_no_readable_file_refuses_naming_the_path(make, tmp_path):
    refuses_naming_the_path(run_job_in_process, make, tmp_path)


# Full tier: the `missing` case above in a fresh interpreter (seconds of imports); the CI tier
# runs a refused config as a command in test_config.py
# (test_wrong_config_on_the_command_line_gives_a_message_not_a_traceback).
@pytest.mark.slow
@pytest.mark.cli
def test_the_command_line_refuses_a_source_with_no_readable_file(tmp_path):
    refuses_naming_the_path(run_job, _missing, tmp_path)
