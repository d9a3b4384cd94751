"""Generation cache: stable keys, exact round trips, counters, concurrent writers."""

from __future__ import annotations

import math
import multiprocessing as mp
import pickle
from pathlib import Path

from pipeline.rewrite.cache import FILE_NAME, GenerationCache, generation_key

SAMPLING = {"temperature": 0.7, "top_p": 0.9, "max_tokens": 512, "seed": 0}


def test_key_is_canonical_and_sensitive() -> None:
    key = generation_key("prompt", "model-a", SAMPLING)
    assert len(key) == 64 and key == generation_key(
        "prompt", "model-a", dict(reversed(SAMPLING.items()))
    )
    assert key != generation_key("prompt ", "model-a", SAMPLING)
    assert key != generation_key("prompt", "model-b", SAMPLING)
    assert key != generation_key("prompt", "model-a", {**SAMPLING, "max_tokens": 1024})
    assert generation_key("p", "m", {"temperature": 1}) == generation_key(
        "p", "m", {"temperature": 1.0}
    )
    assert generation_key("\ud800 odd", "m", {}) != generation_key("odd", "m", {})  # no crash
    # The three fields cannot run into each other.
    assert generation_key("ab", "c", {}) != generation_key("a", "bc", {})


def test_round_trip_counters_and_first_write_wins(tmp_path: Path) -> None:
    cache = GenerationCache(tmp_path / "cache")
    assert (tmp_path / "cache" / FILE_NAME).is_file()
    record = {
        "text": "Paris — 1889 ✓ 😀\n\ttabs\x00nul \ud83d lone",
        "finish_reason": "length",
        "prompt_tokens": 123,
        "completion_tokens": 456,
        "logprob": -0.1 + -0.2,
        "nested": {"list": [1, 2.5, None, True]},
    }
    keys = [generation_key(f"p{i}", "m", SAMPLING) for i in range(3)]
    assert cache.get_many(keys) == {}
    assert (cache.hits, cache.misses) == (0, 3)
    cache.put_many([(keys[0], record), (keys[1], {"text": "b"})])
    cache.put_many([(keys[0], {"text": "second write"})])
    found = cache.get_many([*keys, keys[0]])
    assert found == {keys[0]: record, keys[1]: {"text": "b"}}
    assert found[keys[0]]["logprob"] == -0.1 + -0.2
    assert (cache.hits, cache.misses) == (2, 4) and math.isclose(cache.hit_rate, 2 / 6)
    assert len(cache) == 2
    cache.close()
    # A rerun (new process, new instance) sees everything; its counters start at zero.
    again = GenerationCache(tmp_path / "cache")
    assert again.get_many(keys[:2]) == found and again.stats()["hit_rate"] == 1.0


def test_many_keys_in_one_call(tmp_path: Path) -> None:
    cache = GenerationCache(tmp_path)
    records = [(generation_key(str(i), "m", {}), {"text": str(i)}) for i in range(1200)]
    cache.put_many(records)
    cache.put_many([])
    assert len(cache.get_many(k for k, _ in records)) == 1200 == len(cache)


def test_pickles_unopened(tmp_path: Path) -> None:
    cache = GenerationCache(tmp_path)
    cache.put_many([("k", {"text": "v"})])
    clone = pickle.loads(pickle.dumps(cache))
    assert clone._conn is None and clone.get_many(["k"]) == {"k": {"text": "v"}}


def _writer(cache: GenerationCache, worker: int, n: int) -> None:
    for i in range(0, n, 10):
        cache.put_many(
            [(f"shared-{j}", {"text": f"w{worker}"}) for j in range(i, i + 10)]
            + [(f"own-{worker}-{j}", {"text": str(j)}) for j in range(i, i + 10)]
        )
        cache.get_many([f"own-{1 - worker}-{i}"])


def test_two_processes_write_at_once(tmp_path: Path) -> None:
    cache = GenerationCache(tmp_path)
    n = 1000
    ctx = mp.get_context("spawn")  # like Ray actors: a fresh interpreter, the cache pickled
    workers = [ctx.Process(target=_writer, args=(cache, w, n)) for w in (0, 1)]
    for p in workers:
        p.start()
    for p in workers:
        p.join(timeout=120)
        assert p.exitcode == 0
    assert len(cache) == 3 * n
    shared = cache.get_many(f"shared-{j}" for j in range(n))
    assert len(shared) == n and {r["text"] for r in shared.values()} <= {"w0", "w1"}
    own = cache.get_many(f"own-{w}-{j}" for w in (0, 1) for j in range(n))
    assert all(own[f"own-{w}-{j}"] == {"text": str(j)} for w in (0, 1) for j in range(n))
