"""Stable hashes: the same value on every machine, run and Python version.

Python's `hash()` of a string is salted per process, so anything that must repeat (which
documents a sample keeps, which duplicate survives, which shard a row lands in) hashes here.

    stable_key(seed, "wiki/42")            # 64-bit int of the seed and the parts
    stable_rank(seed, "wiki/42")           # the same, halved to fit an int64 column
    stable_fraction(seed, "wiki/42") < 0.1  # a deterministic 10% sample
    file_sha256(path)                      # hex sha256 of a file's bytes
"""

from __future__ import annotations

import hashlib
from pathlib import Path


def stable_key(seed: int, *parts: str) -> int:
    """A 64-bit blake2b hash of the seed and `parts`, joined by NUL (no part can run into the
    next); lone surrogates (ids from a reader's backslash escapes) hash as they are."""
    data = "\0".join((str(seed), *parts)).encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


def stable_rank(seed: int, *parts: str) -> int:
    """A pseudo-random, stable order key that fits an int64 column (63 bits)."""
    return stable_key(seed, *parts) >> 1


def stable_fraction(seed: int, *parts: str) -> float:
    """A stable pseudo-random number in [0, 1): `< f` keeps a deterministic share f."""
    return stable_key(seed, *parts) / 2**64


def file_sha256(path: Path | str) -> str:
    """Hex sha256 of a file's bytes, read in chunks (hashlib.file_digest)."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()
