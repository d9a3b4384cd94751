"""Which tokenized document goes where: training split, held-out split, or set aside.

Pure decisions over small per-row columns (no text, no tokens), made once on the driver by
`make_plan` and applied to every batch by `decide` / `shard_files` from a few numbers (a
cutoff per rule, each shard's first sort key), so workers agree with the driver exactly.

Rules, in order (the first that applies names the row's fate):
  empty           no tokens besides BOS/EOS
  too_short       fewer than shards.min_tokens tokens (BOS/EOS not counted)
  (heldout split) a raw document whose doc-id hash falls under shards.heldout_fraction;
                  if none does, the raw document with the smallest hash (one at least)
  heldout_source  a rewrite of a held-out document (shards.heldout_exclude_rewrites)
  mixture_ratio   with shards.rewrite_share = s, the training split should hold a share s
                  of rewrite tokens: the kind in excess keeps the rows with the smallest
                  row-id hash (a uniform sample) up to its budget; the rest are set aside.
                  Not applied when one kind is absent (nothing to mix), which is reported.
  (train split)   everything else

Within a split, rows are ordered by a hash of (kind, row id, text), which interleaves
sources and kinds, and cut into shards of at most shards.target_tokens in that order.

    plan, report = make_plan(meta, shards_config, n_special=2)
    reasons, splits = decide(batch_meta, plan)      # same answer on any worker
    files = shard_files(batch_meta[ORDER], splits, plan)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from pipeline import schema as S
from pipeline.config.shards import ShardsConfig
from pipeline.token_shards.files import HELDOUT, SPLITS, TRAIN, shard_file_name, shard_starts

# Per-row keys computed by the tokenizing workers (63-bit, so they fit int64).
ORDER = "_order"  # position within a split: hash(seed, kind, row id, text)
HELDOUT_KEY = "_heldout_key"  # hash(seed, source doc id): a rewrite shares its document's
MIX_KEY = "_mix_key"  # hash(seed, row id): the mixture sample
PARENT_ID = "_parent_id"  # the source document's doc_id (a rewrite's doc_id column)

EMPTY = "empty"
TOO_SHORT = "too_short"
HELDOUT_SOURCE = "heldout_source"
MIXTURE_RATIO = "mixture_ratio"
KEY_RANGE = 1 << 63


@dataclass
class Plan:
    """What every worker needs to place a row: thresholds and shard boundaries."""

    min_tokens: int
    n_special: int  # BOS/EOS tokens added to every document
    heldout_cutoff: int  # raw rows with heldout key <= cutoff are held out; -1: none
    exclude_heldout_rewrites: bool
    mix_cutoff: dict[str, int | None]  # per kind: keep rows with mix key <= cutoff
    boundaries: dict[str, list[int]] = field(default_factory=dict)  # split: first keys
    planned: dict[str, tuple[int, int]] = field(default_factory=dict)  # file: (rows, tokens)


def decide(meta: Mapping[str, np.ndarray], plan: Plan) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the drop reason (None if kept) and the split ("" if dropped).

    `meta` holds numpy arrays: kind, n_tokens, HELDOUT_KEY, MIX_KEY."""
    kind = np.asarray(meta[S.KIND], dtype=object)
    content = np.asarray(meta[S.N_TOKENS], dtype=np.int64) - plan.n_special
    held_key = np.asarray(meta[HELDOUT_KEY], dtype=np.int64)
    mix_key = np.asarray(meta[MIX_KEY], dtype=np.int64)
    n = len(kind)
    reason = np.full(n, None, dtype=object)
    split = np.full(n, "", dtype=object)
    open_ = np.ones(n, dtype=bool)

    def settle(mask: np.ndarray, value: str, column: np.ndarray) -> None:
        nonlocal open_
        hit = open_ & mask
        column[hit] = value
        open_ = open_ & ~hit

    settle(content <= 0, EMPTY, reason)
    settle(content < plan.min_tokens, TOO_SHORT, reason)
    is_raw = kind == S.KIND_RAW
    under = held_key <= plan.heldout_cutoff
    settle(is_raw & under, HELDOUT, split)
    if plan.exclude_heldout_rewrites:
        settle(~is_raw & under, HELDOUT_SOURCE, reason)
    for k, cutoff in plan.mix_cutoff.items():
        if cutoff is not None:
            settle((kind == k) & (mix_key > cutoff), MIXTURE_RATIO, reason)
    split[open_] = TRAIN
    return reason, split


def is_kept(reason: np.ndarray) -> np.ndarray:
    """Rows without a drop reason."""
    return np.fromiter((r is None for r in reason), dtype=bool, count=len(reason))


def shard_files(order: np.ndarray, split: np.ndarray, plan: Plan) -> np.ndarray:
    """Per row: its shard's file name ("" for a dropped row), from the plan's boundaries."""
    order = np.asarray(order, dtype=np.int64)
    split = np.asarray(split, dtype=object)
    files = np.full(len(order), "", dtype=object)
    for name in SPLITS:
        rows = np.flatnonzero(split == name)
        if not len(rows):
            continue
        starts = np.asarray(plan.boundaries[name], dtype=np.int64)
        index = np.searchsorted(starts, order[rows], side="right") - 1
        files[rows] = [shard_file_name(name, int(i)) for i in index]
    return files


def make_plan(
    meta: Mapping[str, np.ndarray], cfg: ShardsConfig, n_special: int
) -> tuple[Plan, dict]:
    """Decide thresholds and shard boundaries for all rows; returns (plan, mixture report).

    `meta` holds numpy arrays for every row: kind, n_tokens, ORDER, HELDOUT_KEY, MIX_KEY.
    """
    kind = np.asarray(meta[S.KIND], dtype=object)
    n_tokens = np.asarray(meta[S.N_TOKENS], dtype=np.int64)
    held_key = np.asarray(meta[HELDOUT_KEY], dtype=np.int64)
    plan = Plan(
        min_tokens=cfg.min_tokens,
        n_special=n_special,
        heldout_cutoff=-1,
        exclude_heldout_rewrites=cfg.heldout_exclude_rewrites,
        mix_cutoff={S.KIND_RAW: None, S.KIND_REWRITE: None},
    )
    reason, _ = decide(meta, plan)
    if cfg.heldout_fraction > 0:
        plan.heldout_cutoff = int(cfg.heldout_fraction * KEY_RANGE) - 1
        raw_kept = (kind == S.KIND_RAW) & is_kept(reason)
        if raw_kept.any() and not (held_key[raw_kept] <= plan.heldout_cutoff).any():
            plan.heldout_cutoff = int(held_key[raw_kept].min())
    reason, split = decide(meta, plan)
    report = _mix(plan, cfg.rewrite_share, kind, n_tokens, meta[MIX_KEY], split == TRAIN)
    reason, split = decide(meta, plan)
    report.update(_achieved(kind, n_tokens, split == TRAIN, reason))
    order = np.asarray(meta[ORDER], dtype=np.int64)
    for name in SPLITS:
        rows = np.flatnonzero(split == name)
        rows = rows[np.argsort(order[rows], kind="stable")]
        starts = shard_starts(n_tokens[rows], cfg.target_tokens, keys=order[rows])
        plan.boundaries[name] = [int(order[rows[i]]) for i in starts]
        ends = [*starts[1:], len(rows)] if starts else []
        for index, (a, b) in enumerate(zip(starts, ends, strict=True)):
            plan.planned[shard_file_name(name, index)] = (b - a, int(n_tokens[rows[a:b]].sum()))
    return plan, report


def _mix(plan: Plan, share: float | None, kind, n_tokens, mix_key, train) -> dict:
    raw = int(n_tokens[train & (kind == S.KIND_RAW)].sum())
    rewrite = int(n_tokens[train & (kind == S.KIND_REWRITE)].sum())
    report: dict = {"rewrite_share_target": share, "applied": False}
    if share is None:
        report["note"] = "shards.rewrite_share is null: every document kept, share reported"
        return report
    if raw == 0 or rewrite == 0:
        report["note"] = "only one kind in the training split: nothing to mix"
        return report
    report["applied"] = True
    if rewrite / (raw + rewrite) < share:
        excess, budget = S.KIND_RAW, rewrite * (1 - share) / share
    else:
        excess, budget = S.KIND_REWRITE, raw * share / (1 - share)
    rows = np.flatnonzero(train & (kind == excess))
    keys = np.asarray(mix_key, dtype=np.int64)[rows]
    by_key = np.argsort(keys, kind="stable")
    fits = np.cumsum(n_tokens[rows][by_key]) <= budget
    # Keep the longest prefix that fits (cumsum is monotone, so `fits` is a prefix).
    plan.mix_cutoff[excess] = int(keys[by_key][fits].max()) if fits.any() else -1
    report["sampled_kind"] = excess
    return report


def _achieved(kind, n_tokens, train, reason) -> dict:
    tokens = {k: int(n_tokens[train & (kind == k)].sum()) for k in (S.KIND_RAW, S.KIND_REWRITE)}
    total = sum(tokens.values())
    set_aside = {
        k: int(((kind == k) & (reason == MIXTURE_RATIO)).sum())
        for k in (S.KIND_RAW, S.KIND_REWRITE)
    }
    return {
        "train_tokens": tokens,
        "rewrite_share": round(tokens[S.KIND_REWRITE] / total, 6) if total else None,
        "set_aside_documents": set_aside,
    }


def totals(
    meta: Mapping[str, np.ndarray], split: np.ndarray, which: str
) -> dict[str, dict[str, dict[str, int]]]:
    """Documents and tokens of one split by source, by kind (raw and rewrite always present)
    and by style (rewrites only), each sorted by name."""
    rows = np.asarray(split, dtype=object) == which
    out: dict[str, dict[str, dict[str, int]]] = {}
    for group, column in (("by_source", S.SOURCE), ("by_kind", S.KIND), ("by_style", S.STYLE)):
        names = np.asarray(meta[column], dtype=object)[rows]
        counts = np.asarray(meta[S.N_TOKENS], dtype=np.int64)[rows]
        table: dict[str, dict[str, int]] = {}
        if group == "by_kind":
            table = {k: {"documents": 0, "tokens": 0} for k in (S.KIND_RAW, S.KIND_REWRITE)}
        for name, n in zip(names, counts, strict=True):
            if name is None:
                continue
            entry = table.setdefault(name, {"documents": 0, "tokens": 0})
            entry["documents"] += 1
            entry["tokens"] += int(n)
        out[group] = dict(sorted(table.items()))
    return out
