"""Held-out split, mixture and shard layout: each rule, and every row placed exactly once."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline import schema as S
from pipeline.config.shards import ShardsConfig
from pipeline.plumbing.hashing import stable_rank
from pipeline.tokens.mixing import (
    EMPTY,
    HELDOUT_KEY,
    HELDOUT_SOURCE,
    MIX_KEY,
    MIXTURE_RATIO,
    ORDER,
    TOO_SHORT,
    decide,
    make_plan,
    shard_files,
    totals,
)

RAW, REW = S.KIND_RAW, S.KIND_REWRITE


def meta_of(rows: list[tuple[str, str, int]], seed: int = 0) -> dict[str, np.ndarray]:
    """rows: (kind, parent doc id, n_tokens incl. BOS+EOS); a rewrite's id is parent#style."""
    kinds, parents, n = zip(*rows, strict=True) if rows else ((), (), ())
    ids = [p if k == RAW else f"{p}#qa" for k, p in zip(kinds, parents, strict=True)]
    return {
        S.KIND: np.array(kinds, dtype=object),
        S.SOURCE: np.array([p.split("/")[0] for p in parents], dtype=object),
        S.STYLE: np.array([None if k == RAW else "qa" for k in kinds], dtype=object),
        S.N_TOKENS: np.array(n, dtype=np.int64),
        ORDER: np.array(
            [stable_rank(seed, k, i) for k, i in zip(kinds, ids, strict=True)], np.int64
        ),
        HELDOUT_KEY: np.array([stable_rank(seed, "heldout", p) for p in parents], dtype=np.int64),
        MIX_KEY: np.array([stable_rank(seed, "mix", i) for i in ids], dtype=np.int64),
    }


def test_each_rule_names_its_rows():
    rows = [(RAW, "a/0", 2), (RAW, "a/1", 5), *[(RAW, f"a/{i}", 40) for i in range(2, 60)]]
    rows += [(REW, f"a/{i}", 40) for i in range(2, 60)]
    meta = meta_of(rows)
    plan, _ = make_plan(meta, ShardsConfig(min_tokens=4, heldout_fraction=0.1), n_special=2)
    reasons, splits = decide(meta, plan)
    assert reasons[0] == EMPTY and reasons[1] == TOO_SHORT  # 0 and 3 content tokens
    held = {p for (k, p, _), s in zip(rows, splits, strict=True) if s == "heldout"}
    assert held and all(p.startswith("a/") for p in held)
    for (kind, parent, _), reason, split in zip(rows, reasons, splits, strict=True):
        if kind == REW:  # a rewrite is set aside exactly when its document is held out
            assert (reason == HELDOUT_SOURCE) == (parent in held)
            assert split != "heldout"


def test_at_least_one_document_is_held_out():
    meta = meta_of([(RAW, f"a/{i}", 30) for i in range(3)])
    plan, _ = make_plan(meta, ShardsConfig(heldout_fraction=1e-9), n_special=2)
    assert Counter(decide(meta, plan)[1])["heldout"] == 1
    plan, _ = make_plan(meta, ShardsConfig(heldout_fraction=0), n_special=2)
    assert Counter(decide(meta, plan)[1])["heldout"] == 0


@pytest.mark.parametrize("share", [0.5, 0.25])
def test_the_kind_in_excess_is_sampled_down_to_the_share(share):
    rows = [(RAW, f"a/{i}", 50 + i % 7) for i in range(400)]
    rows += [(REW, f"a/{i}", 60 + i % 5) for i in range(100)]
    meta = meta_of(rows)
    cfg = ShardsConfig(heldout_fraction=0, rewrite_share=share)
    plan, report = make_plan(meta, cfg, n_special=2)
    reasons, _ = decide(meta, plan)
    assert report["applied"] and report["sampled_kind"] == RAW
    assert abs(report["rewrite_share"] - share) < 0.01
    dropped = Counter(k for k, r in zip(meta[S.KIND], reasons, strict=True) if r == MIXTURE_RATIO)
    assert dropped[REW] == 0 and dropped[RAW] == report["set_aside_documents"][RAW] > 0
    # Too many rewrites: the rewrites are sampled down instead.
    plan, report = make_plan(meta, ShardsConfig(heldout_fraction=0, rewrite_share=0.05), 2)
    assert report["sampled_kind"] == REW and abs(report["rewrite_share"] - 0.05) < 0.01


def test_no_mixing_without_both_kinds_and_reported_when_off():
    meta = meta_of([(RAW, f"a/{i}", 30) for i in range(10)])
    _, report = make_plan(meta, ShardsConfig(rewrite_share=0.5), n_special=2)
    assert not report["applied"] and "nothing to mix" in report["note"]
    _, report = make_plan(meta, ShardsConfig(), n_special=2)
    assert not report["applied"] and report["rewrite_share"] == 0.0


def test_totals_by_source_kind_and_style():
    meta = meta_of([(RAW, "a/1", 10), (RAW, "b/1", 20), (REW, "a/1", 30)])
    split = np.array(["train", "train", "train"], dtype=object)
    t = totals(meta, split, "train")
    assert t["by_source"] == {
        "a": {"documents": 2, "tokens": 40},
        "b": {"documents": 1, "tokens": 20},
    }
    assert t["by_kind"][RAW] == {"documents": 2, "tokens": 30}
    assert t["by_style"] == {"qa": {"documents": 1, "tokens": 30}}
    assert totals(meta, split, "heldout")["by_kind"][REW] == {"documents": 0, "tokens": 0}


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from([RAW, REW]), st.integers(0, 30), st.integers(2, 80)), max_size=80
    ),
    st.integers(20, 300),
    st.sampled_from([None, 0.3, 0.5]),
    st.floats(0, 0.5),
)
def test_every_row_is_placed_exactly_once_and_shards_match_the_plan(rows, target, share, frac):
    meta = meta_of([(k, f"s{p % 3}/{p}", n) for k, p, n in rows])
    cfg = ShardsConfig(
        target_tokens=target, min_tokens=3, heldout_fraction=frac, rewrite_share=share
    )
    plan, _ = make_plan(meta, cfg, n_special=2)
    reasons, splits = decide(meta, plan)
    for reason, split in zip(reasons, splits, strict=True):
        assert (reason is None) == (split in ("train", "heldout"))
    files = shard_files(meta[ORDER], splits, plan)
    placed = Counter(f for f in files if f)
    assert placed == Counter({f: rows for f, (rows, _) in plan.planned.items()})
    for name, (_, tokens) in plan.planned.items():
        assert sum(n for f, n in zip(files, meta[S.N_TOKENS], strict=True) if f == name) == tokens
        assert tokens <= target or plan.planned[name][0] == 1 or _ties(meta, files, name)
    long_raw = [
        k == RAW and r not in (EMPTY, TOO_SHORT) for k, r in zip(meta[S.KIND], reasons, strict=True)
    ]
    assert ("heldout" in set(splits)) == (frac > 0 and any(long_raw))


def _ties(meta, files, name) -> bool:
    keys = [k for k, f in zip(meta[ORDER], files, strict=True) if f == name]
    return len(set(keys)) < len(keys)
