"""Partial duplicates: candidate pairs from window-level MinHash-LSH, decided by containment.

Jaccard cannot see an excerpt: a 200-word quote inside a 5,000-word page has Jaccard 0.04
with it. Containment, |A ∩ B| / |A| for the smaller A, can. Every document is cut into
overlapping word windows; a window of an excerpt lands within stride/2 words of one of its
container's windows, so the two windows have high Jaccard and collide in an LSH over window
signatures. Colliding documents are candidates; exact shingle sets decide.

    keys = window_band_keys(["long text ...", "excerpt ..."], shingle_cfg, containment_cfg, seed=1)
    pairs = containment_candidates(["a", "b"], [900, 120], max_bucket_pairs=64)
"""

from __future__ import annotations

import numpy as np

from pipeline.config import ContainmentConfig, ShingleConfig
from pipeline.dedup.lsh import band_keys, optimal_bands
from pipeline.dedup.minhash import minhash_signatures
from pipeline.dedup.shingles import shingle_hashes_batch


def text_windows(text: str, window: int, stride: int) -> list[str]:
    """Overlapping windows of `window` words every `stride` words; the last one reaches the end."""
    words = text.split()
    if len(words) <= window:
        return [" ".join(words)]
    starts = list(range(0, len(words) - window + 1, stride))
    if starts[-1] + window < len(words):
        starts.append(len(words) - window)
    return [" ".join(words[s : s + window]) for s in starts]


def window_bands(cfg: ContainmentConfig) -> tuple[int, int]:
    return optimal_bands(cfg.window_threshold, cfg.num_perm)


def window_band_keys(
    texts: list[str], shingle: ShingleConfig, cfg: ContainmentConfig, seed: int
) -> list[np.ndarray]:
    """For each document, the unique LSH bucket keys of all its windows (uint64)."""
    windows = [text_windows(t, cfg.window, cfg.stride) for t in texts]
    flat = [w for doc in windows for w in doc]
    values, offsets = shingle_hashes_batch(flat, shingle)
    signatures = minhash_signatures(values, offsets, cfg.num_perm, seed)
    bands, rows = window_bands(cfg)
    keys = band_keys(signatures, bands, rows)
    out, start = [], 0
    for doc in windows:
        out.append(np.unique(keys[start : start + len(doc)]))
        start += len(doc)
    return out


def containment_candidates(
    doc_ids: list[str], n_shingles: list[int], max_bucket_pairs: int
) -> list[tuple[str, str]]:
    """(part, whole) pairs among one bucket's documents; part is the smaller (size, then id).

    A bucket larger than max_bucket_pairs pairs its largest document with every other one
    only (its likeliest container), bounding the work on boilerplate windows.
    """
    members = sorted(set(zip(n_shingles, doc_ids, strict=True)))
    if len(members) < 2:
        return []
    if len(members) > max_bucket_pairs:
        whole = members[-1]
        return [(part[1], whole[1]) for part in members[:-1]]
    return [
        (members[i][1], members[j][1])
        for i in range(len(members))
        for j in range(i + 1, len(members))
    ]
