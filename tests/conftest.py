"""Shared fixtures: one local Ray for the whole session, and small corpora on disk; the test
tiers' markers (README, Development).

A test that asks for a Ray fixture is marked `ray` here, so the mark follows what the test
does; one that starts Ray another way says so with its own mark. Outside tests marked `ray`,
`ray.init` refuses, so `make test-fast` (-m "not ray ...") cannot start Ray by accident.
"""

from __future__ import annotations

import copy
import functools
import gzip
import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard
from hydra import compose, initialize_config_dir
from hypothesis import settings
from omegaconf import DictConfig

from pipeline.config import (
    ClusterConfig,
    Config,
    CorpusConfig,
    RunConfig,
    SourceConfig,
    to_config,
)
from pipeline.models.build import ensure_local_moe
from pipeline.ray_session import configure_ray_data, init_kwargs

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
SAMPLE_DIR = ROOT / "data" / "sample"
RAY_FIXTURES = frozenset({"ray_local"})

# No deadline: how long an example takes says nothing about its correctness, and a loaded
# 2-core CI machine would fail Hypothesis' 200 ms default at random.
settings.register_profile("pipeline", deadline=None)
settings.load_profile("pipeline")


def uses_shared_ray(item: pytest.Item) -> bool:
    return bool(RAY_FIXTURES.intersection(getattr(item, "fixturenames", ())))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if uses_shared_ray(item):
            item.add_marker(pytest.mark.ray)
    # Tests on the session's shared Ray last: once `ray_local` has started it stays up to the
    # end, and a test that starts its own Ray (a job in a subprocess: the driver faults, the
    # commands) then shares the 2 cores with its idle processes. The driver-fault test took
    # 135-165 s after the shared Ray had started, 100 s alone. The order is otherwise kept.
    items.sort(key=uses_shared_ray)


@pytest.fixture(autouse=True)
def _ray_only_where_marked(request, monkeypatch):
    if request.node.get_closest_marker("ray") is not None:
        return
    import ray

    def refuse(*args, **kwargs):
        raise RuntimeError(
            f"{request.node.nodeid} starts Ray but is not marked `ray`: ask for the ray_local"
            " fixture, or mark it @pytest.mark.ray (test tiers: README, Development)"
        )

    monkeypatch.setattr(ray, "init", refuse)


@pytest.fixture(scope="session")
def ray_local():
    """A 2-CPU Ray on loopback, started once; the runner reuses it instead of starting its own."""
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import ray

    if not ray.is_initialized():
        ray.init(
            **init_kwargs(ClusterConfig(num_cpus=2, include_dashboard=False, namespace="tests"))
        )
    configure_ray_data(progress=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def local_moe_dir() -> Path:
    """The default local MoE in .cache/models, where the rewrite stage looks for it: `make`
    builds it before the tests (jobs/build_model.py); run alone, a test builds it here (~1 min)
    rather than skip."""
    return ensure_local_moe(ROOT / ".cache" / "models")


def write_jsonl(path: Path, records: list, compress: str | None = None) -> Path:
    """Records are dicts (dumped as JSON) or raw bytes lines (written as they are)."""
    lines = b"".join(
        (r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n" for r in records
    )
    if compress == "gzip":
        lines = gzip.compress(lines)
    elif compress == "zstd":
        lines = zstandard.ZstdCompressor().compress(lines)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(lines)
    return path


@pytest.fixture
def mixed_corpus(tmp_path: Path) -> dict:
    """A small corpus in every format, with one bad record of each kind the readers name.

    Returns the source configs and the expected counts, so tests assert exact numbers.
    """
    root = tmp_path / "corpus"
    write_jsonl(
        root / "web" / "a.jsonl",
        [
            {"id": "a1", "text": "The first good document.\r\n"},
            {"id": "a2", "text": "Cafe\u0301 au lait."},  # NFD: normalised to NFC
            b'{"id": "a3", "text": "broken',  # invalid JSON
            b'{"id": "a4", "text": "caf\xe9"}',  # latin-1 byte: invalid UTF-8
            {"id": "a5"},  # missing text
            {"id": "a6", "text": 42},  # non-string text
            {"id": "a7", "text": "   \n "},  # empty after normalisation
            {"id": "a8", "text": "x" * 5000},  # above max_doc_bytes (4000 in the config)
            {"text": "A document without an id gets a content hash."},
        ],
    )
    write_jsonl(
        root / "web" / "b.jsonl.gz",
        [{"id": f"b{i}", "text": f"Compressed document number {i}."} for i in range(5)],
        compress="gzip",
    )
    good = gzip.compress(
        b"".join(b'{"id": "c%d", "text": "doc %d"}\n' % (i, i) for i in range(400))
    )
    (root / "web" / "c.jsonl.gz").write_bytes(good[: len(good) // 2])  # truncated archive
    write_jsonl(
        root / "wiki" / "w.jsonl.zst",
        [{"id": f"w{i}", "text": f"Wiki article {i} about a topic."} for i in range(3)],
        compress="zstd",
    )
    pq.write_table(
        pa.table({"id": ["p0", "p1", "p2"], "text": ["Parquet one.", None, "Parquet three."]}),
        root / "wiki" / "p.parquet",
    )
    (root / "books").mkdir()
    (root / "books" / "one.txt").write_text("A short book.\n")
    (root / "books" / "two.txt").write_bytes(b"\xef\xbb\xbfA book with a byte-order mark.\n")
    (root / "books" / "bad.txt").write_bytes(b"Latin-1 \xe9 is not UTF-8.\n")
    sources = {
        "web": SourceConfig(paths=[str(root / "web" / "*.jsonl*")]),
        "wiki": SourceConfig(paths=[str(root / "wiki" / "*")], weight=2.0),
        "books": SourceConfig(paths=[str(root / "books" / "*.txt")], format="text", weight=0.5),
    }
    return {"root": root, "sources": sources}


def make_config(
    sources: dict, run_name: str = "test", stages: tuple[str, ...] = ("ingest",), **corpus
) -> Config:
    return Config(
        run=RunConfig(name=run_name, progress=False, stages=list(stages)),
        corpus=CorpusConfig(name="test", sources=sources, **corpus),
        cluster=ClusterConfig(num_cpus=2, include_dashboard=False),
    )


def compose_config(*overrides: str) -> DictConfig:
    """conf/config.yaml composed with OVERRIDES, as jobs/run.py composes it; a copy the caller
    may change. Each distinct compose runs once per test process: one costs ~0.23 s on 2 cores,
    and the same ones recur across test files (the default config in four, each model preset
    in two or three). A compose that raises is not cached: it raises again."""
    return copy.deepcopy(_composed(overrides))


def typed_config(*overrides: str) -> Config:
    """The same, as the typed Config (to_config: another ~0.07 s, also once per compose)."""
    return copy.deepcopy(_typed(overrides))


@functools.cache
def _composed(overrides: tuple[str, ...]) -> DictConfig:
    with initialize_config_dir(str(CONF), version_base=None):
        return compose("config", overrides=list(overrides))


@functools.cache
def _typed(overrides: tuple[str, ...]) -> Config:
    return to_config(_composed(overrides))


def local_model_config():
    """The local CPU model preset as Hydra composes it (conf/model/local_moe.yaml)."""
    return typed_config("model=local_moe").model
