"""Generation cache: a rerun after a crash reads finished generations instead of paying again.

Keyed by sha256 over (rendered prompt text, model id, sampling parameters), stored in one
SQLite file per run (WAL mode: many readers and one writer at a time, several processes or
Ray actors on one machine). SQLite over NFS is unreliable: keep `cache_dir` on a local disk.

    cache = GenerationCache(run_dir / "cache")
    key = generation_key(prompt_text, "smollm2-moe", {"temperature": 0.7, "max_tokens": 512})
    found = cache.get_many([key])          # {} the first time
    cache.put_many([(key, {"text": "...", "finish_reason": "stop", "n_tokens": 97})])
    cache.hits, cache.misses, len(cache)
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

FILE_NAME = "generations.sqlite3"
# Writers wait for each other rather than fail; a batch insert holds the lock for ms.
BUSY_TIMEOUT_S = 60.0
# SQLite's bound-parameter limit is 999 on old builds; stay under it.
_QUERY_BATCH = 500


def generation_key(prompt: str, model_id: str, sampling: dict[str, Any]) -> str:
    """sha256 hex over canonical JSON (sorted keys) of prompt, model and sampling parameters.

    Integral floats are written as ints, so temperature=1 and temperature=1.0 share a key.
    """
    canonical = json.dumps(
        {"model": model_id, "prompt": prompt, "sampling": _normalize(sampling)},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,  # lone surrogates escape instead of failing to encode
    )
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def _normalize(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {str(k): _normalize(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_normalize(v) for v in value]
    return value


class GenerationCache:
    """Records (JSON-serialisable dicts) by generation key; the first value stored for a key wins.

    Picklable: a Ray actor receives it unopened and opens its own connection on first use
    (a sqlite3 connection must not cross processes).
    """

    def __init__(self, cache_dir: str | os.PathLike[str]) -> None:
        self.path = Path(cache_dir) / FILE_NAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.hits = 0
        self.misses = 0
        self._conn: sqlite3.Connection | None = None
        self._pid = -1
        self._connect()  # create the table now, so a bad path fails at construction

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None or self._pid != os.getpid():
            # Ray actors run __init__ and their calls on different threads; calls are serial
            # per actor, so one connection shared across those threads is safe.
            conn = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            conn.execute("PRAGMA journal_mode = WAL")
            # WAL + NORMAL survives a process crash (the case that matters for a cache);
            # only a power loss can drop the last commits, which just get regenerated.
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS generations (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
            )
            self._conn, self._pid = conn, os.getpid()
        return self._conn

    def get_many(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The stored records of those keys that are present; counts hits and misses."""
        wanted = list(dict.fromkeys(keys))
        conn = self._connect()
        found: dict[str, dict[str, Any]] = {}
        for i in range(0, len(wanted), _QUERY_BATCH):
            batch = wanted[i : i + _QUERY_BATCH]
            marks = ",".join("?" * len(batch))
            query = f"SELECT key, value FROM generations WHERE key IN ({marks})"
            for key, value in conn.execute(query, batch):
                found[key] = json.loads(value)
        self.hits += len(found)
        self.misses += len(wanted) - len(found)
        return found

    def put_many(self, records: Iterable[tuple[str, dict[str, Any]]]) -> None:
        """Store records in one transaction; keys already present keep their first value."""
        rows = [(key, json.dumps(record, ensure_ascii=True)) for key, record in records]
        if not rows:
            return
        conn = self._connect()
        # IMMEDIATE takes the write lock up front, so two writers queue on busy_timeout
        # instead of one failing with "database is locked" when upgrading a read lock.
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany("INSERT OR IGNORE INTO generations (key, value) VALUES (?, ?)", rows)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @property
    def hit_rate(self) -> float:
        lookups = self.hits + self.misses
        return self.hits / lookups if lookups else 0.0

    def stats(self) -> dict[str, float]:
        return {"hits": self.hits, "misses": self.misses, "hit_rate": self.hit_rate}

    def __len__(self) -> int:
        return self._connect().execute("SELECT COUNT(*) FROM generations").fetchone()[0]

    def close(self) -> None:
        if self._conn is not None and self._pid == os.getpid():
            self._conn.close()
        self._conn = None

    def __enter__(self) -> GenerationCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_conn"], state["_pid"] = None, -1
        return state
