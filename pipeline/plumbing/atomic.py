"""Atomic file writes: a reader sees the old file or the whole new one, never a part.

Every output of a run goes through here (temp file in the same directory, fsync, rename),
which is what makes completion markers trustworthy after a crash.

    atomic_write_text(run_dir / "stats.json", json.dumps(stats))
    with atomic_path(run_dir / "part-00000.parquet") as tmp:
        pq.write_table(table, tmp)
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def temp_path(final: Path) -> Path:
    """A hidden, unique temporary name beside `final` (same filesystem, so rename is atomic)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    return final.with_name(f".{final.name}.{uuid.uuid4().hex[:8]}.tmp")


def commit(tmp: Path, final: Path) -> None:
    """Make a finished temporary file durable and move it into place."""
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, final)


@contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temporary path beside `final`; rename it over `final` if the block succeeds."""
    tmp = temp_path(final)
    try:
        yield tmp
        commit(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(final: Path, text: str) -> None:
    with atomic_path(final) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_write_json(final: Path, obj: Any) -> None:
    atomic_write_text(final, json.dumps(obj, indent=2, sort_keys=True) + "\n")
