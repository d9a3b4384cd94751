"""Dedup benchmark: speed, quality, memory and scaling of `pipeline.dedup`, one table, one run.

    python bench/dedup.py                   # full run (~6 min on 2 cores)
    python bench/dedup.py --quick           # smoke run, tiny sizes (~1 min with Ray)
    python bench/dedup.py --quick --no-stage  # in-memory parts only (~5 s), for tests
    python bench/dedup.py --json out.json   # also write every number as JSON

Corpora: (a) a seeded synthetic corpus: ~3.5 KB documents of Zipf-distributed words from a
5,000-word vocabulary (common English words at the top ranks, pronounceable made-up words
below), with planted derivatives of distinct base documents: exact copies, copies at word edit
rates 1-30% (substitutions, insertions and deletions mixed) and excerpts / truncations keeping
10, 25 or 50% of a document. The truth of each planted pair is its exact Jaccard (and
containment) of the two shingle-hash sets, computed per shingle choice. (b) The bundled real
sample (conf/corpus/sample.yaml), read by the ingest core.

What each number means:
- signatures: documents per second on one core (this process pinned to CPU 0).
  "ours text->sig" = `shingle_hashes_batch` + `minhash_signatures` from the raw text, in
  batches of `dedup.batch_rows`; "datasketch bulk" = `MinHash.bulk` on pre-built lists of the
  same shingles as UTF-8 bytes (its string building excluded, in its favour). "kernel only" =
  `minhash_signatures` vs `MinHash.bulk(hashfunc=identity)` on the same uint32 shingle
  hashes; there both must give identical signatures ("equal").
- lsh: `band_keys` + `candidate_pairs` vs datasketch `MinHashLSH(params=(b, r))` insert all +
  query all of MinHash objects carrying our signatures (their construction timed apart); the
  two candidate sets must be identical.
- quality: candidate generation, then verification by exact Jaccard of the shingle sets (the
  stage default) or by the signature estimate. recall = planted pairs with true Jaccard >= t
  that are reported / all such pairs; precision = reported pairs whose true Jaccard >= t /
  all reported pairs (1.0 by construction for exact verification). "caught" = percent of the
  planted copies at each edit rate (1/2/3/5/10/20/30%) reported, whatever their Jaccard.
  grid rows: shingles x threshold t, bands x rows from `optimal_bands` with the default
  weights ("bal", fp 0.5 / fn 0.5) and recall-favouring ones ("rec", fp 0.05 / fn 0.95);
  "P(c|t)" = 1 - (1 - t^r)^b, the chance that a pair exactly at t becomes a candidate;
  "cand" = candidate pairs to verify (the cost). "met" is judged on "rec", exact verify.
- partial: anchor candidates (`document_keys` anchors paired by `partial_candidates`, as the
  stage does), kept when exact containment >= `containment.threshold`; recall over planted
  excerpts / truncations whose true containment reaches it; the default anchor settings and
  two variants (one anchor in 16; one shared anchor enough).
- memory: bytes per document of the work files the stage writes (`document_keys`), by column,
  and the peak RSS growth per 1k documents of the in-memory core on the grid corpus.
- stage: `run_pipeline` with stages [ingest, dedup] on 1x, 2x and 4x the synthetic corpus on a
  2-CPU local Ray; dedup stage seconds, seconds per 1k documents, and t(k) / (k * t(1))
  (goal <= 1.15: linear growth), with the stage's own `extra["step_seconds"]`; a linear fit
  splits the time into a fixed part and a marginal cost per document, and "marginal 2x->4x /
  1x->2x" (1.0 = linear) tests the marginal cost alone. Then the real sample, once.
"""

from __future__ import annotations

import os

# Before numba (and Ray workers, which inherit the environment) load: one thread per process.
os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

import argparse
import concurrent.futures
import contextlib
import gc
import json
import logging
import math
import multiprocessing as mp
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pyarrow as pa
from datasketch import MinHash, MinHashLSH
from omegaconf import OmegaConf

from pipeline import schema as S
from pipeline.config import (
    ClusterConfig,
    Config,
    ContainmentConfig,
    CorpusConfig,
    DedupConfig,
    RunConfig,
    ShingleConfig,
    SourceConfig,
)
from pipeline.dedup.candidates import partial_candidates
from pipeline.dedup.keys import document_keys
from pipeline.dedup.stage import resolve_bands
from pipeline.ingest.files import FileIngest, plan_files
from pipeline.similarity.lsh import band_keys, candidate_pairs, optimal_bands
from pipeline.similarity.minhash import minhash_signatures
from pipeline.similarity.sets import containment, jaccard
from pipeline.similarity.shingles import shingle_hashes_batch, shingle_strings

ROOT = Path(__file__).resolve().parents[1]
EDIT_RATES = (0.01, 0.02, 0.03, 0.05, 0.10, 0.20, 0.30)  # 30%: a hard negative for t >= 0.5
PART_FRACTIONS = (0.10, 0.25, 0.50)
GRID_THRESHOLDS = (0.5, 0.6, 0.7, 0.8)
# (fp_weight, fn_weight) of optimal_bands: the config default, and one that favours recall
# (exact verification removes the extra candidates, so false positives cost only time).
BANDINGS = {"bal": (0.5, 0.5), "rec": (0.05, 0.95)}
GRID_SHINGLES = {
    "word3": ShingleConfig(kind="word", n=3),
    "word5": ShingleConfig(kind="word", n=5),
    "char5": ShingleConfig(kind="char", n=5),
}
RECALL_GOAL, PRECISION_GOAL = 0.95, 0.99
SIG_GOAL, LSH_GOAL, LINEAR_GOAL = 10.0, 50.0, 1.15
log = logging.getLogger("bench.dedup")


@dataclass(frozen=True)
class Sizes:
    """Corpus sizes: `grid_base` base documents (plus planted ones) for the in-memory parts,
    `per_rate` planted pairs per edit rate / excerpt kind, `sig_docs` documents timed against
    datasketch's signatures, `stage_base` base documents of the 1x stage corpus."""

    grid_base: int
    per_rate: int
    sig_docs: int
    stage_base: int
    repeats: int


FULL = Sizes(grid_base=10_000, per_rate=200, sig_docs=3_000, stage_base=3_000, repeats=3)
QUICK = Sizes(grid_base=400, per_rate=20, sig_docs=200, stage_base=150, repeats=1)


# --- synthetic corpus ---------------------------------------------------------------------

# The commonest English words, as the top ranks (a split string: one line, not 150).
_COMMON_TEXT = (
    "the of and to a in is that for it as was with be by on not he i this are or his "
    "from at which but have an they you were her she there been one all we their has "
    "would when if so no will more can who said its about up out them some time into only "
    "other new these two may first then do any like my now over such our man me even most "
    "made after also did many before must through back years where much your way well down "
    "should because each just those people how too little state good very make world still "
    "own see men work long get here between both life being under never day same another "
    "know while last might us"
)
COMMON = tuple(_COMMON_TEXT.split())


def make_vocab(rng: np.random.Generator, size: int = 5000) -> list[str]:
    """Common English words, then unique pronounceable words of 2-4 syllables."""
    onsets = tuple("b c d f g h j k l m n p r s t v w st tr br pl gr ch sh th".split())  # noqa: SIM905
    vowels = ["a", "e", "i", "o", "u", "ai", "ea", "ou", "io"]
    codas = ["", "", "", "n", "r", "s", "t", "l", "nd", "st", "ng"]
    words, seen = list(COMMON), set(COMMON)
    while len(words) < size:
        n = int(rng.integers(2, 5))
        word = "".join(
            onsets[rng.integers(len(onsets))]
            + vowels[rng.integers(len(vowels))]
            + codas[rng.integers(len(codas))]
            for _ in range(n)
        )
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


@dataclass
class Corpus:
    """Documents (id, text) and the planted pairs: (base index, derived index, kind, level)."""

    ids: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    pairs: list[tuple[int, int, str, float]] = field(default_factory=list)

    def add(self, doc_id: str, tokens: list[str]) -> int:
        self.ids.append(doc_id)
        self.texts.append(render(tokens))
        return len(self.ids) - 1


def render(tokens: list[str]) -> str:
    """Sentences of the tokens: punctuation and capitals so the text looks like text (the
    shingler lowercases and strips punctuation, so they do not change the shingles)."""
    out, start = [], True
    for k, tok in enumerate(tokens):
        out.append(tok.capitalize() if start else tok)
        start = (k * 2654435761) % 13 == 0  # a deterministic ~1-in-13 sentence end
        if start:
            out[-1] += "."
        elif (k * 40503) % 17 == 0:
            out[-1] += ","
    return " ".join(out)


class Generator:
    """Seeded documents and edits from a Zipf-Mandelbrot word distribution."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.vocab = np.array(make_vocab(self.rng), dtype=object)
        ranks = np.arange(1, len(self.vocab) + 1)
        p = 1.0 / (ranks + 2.7)  # Zipf-Mandelbrot, s = 1: natural-language-like frequencies
        self.p = p / p.sum()

    def words(self, n: int) -> list[str]:
        return list(self.vocab[self.rng.choice(len(self.vocab), size=n, p=self.p)])

    def document(self) -> list[str]:
        # ~450 words at ~7.8 bytes per word with its space and punctuation: ~3.5 KB.
        return self.words(int(self.rng.integers(370, 530)))

    def edit(self, tokens: list[str], rate: float) -> list[str]:
        """round(rate * len) edits at random positions, substitution/insertion/deletion mixed."""
        n_edits = round(rate * len(tokens))
        ops = self.rng.integers(0, 3, n_edits)
        return apply_edits(list(tokens), ops, self.words(n_edits), self.rng)

    def part(self, tokens: list[str], fraction: float, kind: str) -> list[str]:
        n = max(1, round(fraction * len(tokens)))
        start = 0 if kind == "truncation" else int(self.rng.integers(0, len(tokens) - n + 1))
        return tokens[start : start + n]


def apply_edits(out: list, ops, fresh, rng: np.random.Generator) -> list:
    """Edit `out` in place: per op, at a random position, 0 substitutes, 1 inserts (the next
    fresh word), 2 deletes (never the last word)."""
    for op, word in zip(ops, fresh, strict=True):
        pos = int(rng.integers(len(out)))
        if op == 0:
            out[pos] = word
        elif op == 1:
            out.insert(pos, word)
        elif len(out) > 1:
            del out[pos]
    return out


def make_corpus(n_base: int, per_rate: int, seed: int) -> Corpus:
    """n_base base documents; the first ones get one planted derivative each (so planted pairs
    never overlap): exact copies, edited copies per rate, excerpts and truncations."""
    gen = Generator(seed)
    corpus = Corpus()
    bases = [gen.document() for _ in range(n_base)]
    for i, tokens in enumerate(bases):
        corpus.add(f"base-{i:06d}", tokens)
    plan: list[tuple[str, float]] = [("exact", 0.0)] * (per_rate // 2)
    plan += [("edit", r) for r in EDIT_RATES for _ in range(per_rate)]
    plan += [(k, f) for k in ("excerpt", "truncation") for f in PART_FRACTIONS] * (per_rate // 2)
    if len(plan) > n_base:
        raise ValueError(f"{len(plan)} planted pairs need at least as many base documents")
    order = gen.rng.permutation(n_base)  # planted bases spread over the corpus
    for k, (kind, level) in enumerate(plan):
        base = int(order[k])
        if kind == "exact":
            tokens = bases[base]
        elif kind == "edit":
            tokens = gen.edit(bases[base], level)
        else:
            tokens = gen.part(bases[base], level, kind)
        j = corpus.add(f"{kind}-{level:.2f}-{k:06d}", tokens)
        corpus.pairs.append((base, j, kind, level))
    # Shuffle document order so planted copies are not adjacent to each other in batches.
    perm = gen.rng.permutation(len(corpus.ids))
    where = np.empty_like(perm)
    where[perm] = np.arange(len(perm))
    corpus.ids = [corpus.ids[p] for p in perm]
    corpus.texts = [corpus.texts[p] for p in perm]
    corpus.pairs = [(int(where[a]), int(where[b]), k, lv) for a, b, k, lv in corpus.pairs]
    return corpus


def read_sample() -> tuple[list[str], list[str], CorpusConfig]:
    """The bundled real sample, read and normalised by the ingest core (no Ray)."""
    raw = OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "corpus" / "sample.yaml"))
    sources = {}
    for name, src in raw["sources"].items():
        src["paths"] = [str(ROOT / p) for p in src["paths"]]
        sources[name] = SourceConfig(**src)
    corpus = CorpusConfig(name="sample", sources=sources)
    ids, texts = [], []
    for task in plan_files(corpus):
        for batch in FileIngest(task, corpus).batches():
            for row in batch.to_pylist():
                if row[S.DROP_REASON] is None:
                    ids.append(row[S.DOC_ID])
                    texts.append(row[S.TEXT])
    return ids, texts, corpus


# --- helpers --------------------------------------------------------------------------------


@contextlib.contextmanager
def one_core() -> Iterator[None]:
    """Pin this process to CPU 0 for the like-for-like single-core timings, then restore.
    Ray must start outside: its processes inherit the affinity of the process starting them."""
    if not hasattr(os, "sched_setaffinity"):
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(before)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def best_of(repeats: int, fns: dict[str, Callable[[], Any]]) -> dict[str, float]:
    """Best wall time of each function, the functions interleaved round by round so that a
    noisy neighbour slows both sides of a ratio alike."""
    best = dict.fromkeys(fns, math.inf)
    for _ in range(repeats):
        for name, fn in fns.items():
            started = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - started)
    return best


def shingles_and_signatures(
    texts: list[str], shingle: ShingleConfig, num_perm: int = 128, seed: int = 1, batch: int = 256
) -> tuple[list[np.ndarray], np.ndarray]:
    """Per-document sorted unique shingle hashes and the (n, num_perm) signatures, computed in
    batches as the stage's `compute_features` does."""
    sets: list[np.ndarray] = []
    sigs = []
    for start in range(0, len(texts), batch):
        values, offsets = shingle_hashes_batch(texts[start : start + batch], shingle)
        sets.extend(np.split(values, offsets[1:-1]))
        sigs.append(minhash_signatures(values, offsets, num_perm, seed))
    return sets, np.concatenate(sigs) if sigs else np.empty((0, num_perm), np.uint32)


def pair_jaccard(sets: list[np.ndarray], pairs: np.ndarray) -> np.ndarray:
    return np.array([jaccard(sets[i], sets[j]) for i, j in pairs], dtype=np.float64)


def pair_estimate(sigs: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    if len(pairs) == 0:
        return np.empty(0)
    return (sigs[pairs[:, 0]] == sigs[pairs[:, 1]]).mean(axis=1)


def pair_codes(pairs: np.ndarray, n: int) -> np.ndarray:
    lo, hi = np.minimum(pairs[:, 0], pairs[:, 1]), np.maximum(pairs[:, 0], pairs[:, 1])
    return lo.astype(np.int64) * n + hi


def peak_rss_reset() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) of this process; False where not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return psutil.Process().memory_info().rss


# --- the table ------------------------------------------------------------------------------


class Table:
    """Rows of (section, metric, goal, measured, met), printed aligned; numbers go to JSON."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, str, str]] = []
        self.data: dict[str, Any] = {}

    def add(
        self, section: str, metric: str, measured: str, goal: str = "", met: bool | None = None
    ):
        flag = "" if met is None else ("yes" if met else "NO")
        self.rows.append((section, metric, goal, measured, flag))
        log.info("%s | %s | %s | %s", section, metric, measured, flag)

    def goals(self) -> list[dict[str, Any]]:
        """The rows that have a goal, for the JSON that bench/report.py collects."""
        return [
            {"name": f"{section}: {metric}", "measured": measured, "goal": goal,
             "met": met in ("yes", "ok")}
            for section, metric, goal, measured, met in self.rows
            if met
        ]  # fmt: skip

    def render(self) -> str:
        """Aligned columns; a section's name shows on its first row only."""
        header = ("section", "metric", "goal", "measured", "met")
        widths = [max(len(r[k]) for r in [header, *self.rows]) for k in range(5)]
        out = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
        out.append("  ".join("-" * w for w in widths))
        previous = None
        for row in self.rows:
            shown = ("" if row[0] == previous else row[0], *row[1:])
            out.append("  ".join(c.ljust(w) for c, w in zip(shown, widths, strict=True)).rstrip())
            previous = row[0]
        return "\n".join(out)


# --- 1. signature throughput ----------------------------------------------------------------


def bench_signatures(table: Table, name: str, texts: list[str], sizes: Sizes) -> dict[str, Any]:
    shingle, num_perm, seed = ShingleConfig(), 128, 1
    batch = DedupConfig().batch_rows
    started = time.perf_counter()
    shingle_bytes = [[s.encode("utf-8") for s in shingle_strings(t, shingle)] for t in texts]
    strings_s = time.perf_counter() - started
    values, offsets = shingle_hashes_batch(texts, shingle)
    hash_lists = [values[offsets[i] : offsets[i + 1]].tolist() for i in range(len(texts))]
    shingles_and_signatures(texts[:8], shingle)  # compile / load the numba kernels first

    def ours_text() -> None:
        for start in range(0, len(texts), batch):  # batches as the stage's `compute_features`
            v, o = shingle_hashes_batch(texts[start : start + batch], shingle)
            minhash_signatures(v, o, num_perm, seed)

    def identity(x: int) -> int:
        return x

    with one_core():
        t = best_of(
            sizes.repeats,
            {
                "ours_text": ours_text,
                "ds_bulk": lambda: MinHash.bulk(shingle_bytes, num_perm=num_perm, seed=seed),
                "ours_kernel": lambda: minhash_signatures(values, offsets, num_perm, seed),
                "ds_kernel": lambda: MinHash.bulk(
                    hash_lists, num_perm=num_perm, seed=seed, hashfunc=identity
                ),
            },
        )
    n = len(texts)
    rate = {k: n / v for k, v in t.items()}
    # Correctness: datasketch on the same uint32 hashes must give our signatures exactly.
    check = min(n, 200)
    ours = minhash_signatures(values, offsets[: check + 1], num_perm, seed)
    theirs = MinHash.bulk(hash_lists[:check], num_perm=num_perm, seed=seed, hashfunc=identity)
    equal = all(np.array_equal(ours[i], m.hashvalues) for i, m in enumerate(theirs))
    mb = sum(len(x.encode()) for x in texts) / 1e6
    ratio = rate["ours_text"] / rate["ds_bulk"]
    kernel = rate["ours_kernel"] / rate["ds_kernel"]
    table.add(
        "signatures",
        f"{name} ({n:,} docs, {mb / n * 1e3:.1f} KB): ours vs ds bulk",
        f"{rate['ours_text']:,.0f} vs {rate['ds_bulk']:,.0f} docs/s = {ratio:.1f}x; kernel only "
        f"{rate['ours_kernel']:,.0f} vs {rate['ds_kernel']:,.0f} = {kernel:.1f}x; "
        f"equal {'yes' if equal else 'NO'}",
        f">= {SIG_GOAL:.0f}x",
        ratio >= SIG_GOAL and equal,
    )
    return {
        "docs": n,
        "mb": mb,
        "seconds": t,
        "docs_per_s": rate,
        "ratio": ratio,
        "kernel_ratio": kernel,
        "equal": equal,
        "datasketch_shingle_bytes_docs_per_s": n / strings_s,
    }


# --- 2. LSH candidates ----------------------------------------------------------------------


def bench_lsh(table: Table, name: str, sigs: np.ndarray, sizes: Sizes) -> dict[str, Any]:
    cfg = DedupConfig()
    bands, rows = resolve_bands(cfg)
    n = len(sigs)
    ours_pairs: np.ndarray = np.empty((0, 2), np.int64)

    def ours() -> None:
        nonlocal ours_pairs
        # No star cap here: datasketch pairs every bucket fully, and the sets must agree.
        ours_pairs = candidate_pairs(band_keys(sigs, bands, rows), max_bucket_pairs=n)

    started = time.perf_counter()
    minhashes = [
        MinHash(num_perm=cfg.num_perm, seed=cfg.seed, hashvalues=s, scheme="affine32") for s in sigs
    ]
    build_s = time.perf_counter() - started
    theirs: set[tuple[int, int]] = set()

    def datasketch() -> None:
        lsh = MinHashLSH(threshold=cfg.threshold, num_perm=cfg.num_perm, params=(bands, rows))
        for i, m in enumerate(minhashes):
            lsh.insert(i, m)
        found = set()
        for i, m in enumerate(minhashes):
            found.update((min(i, j), max(i, j)) for j in lsh.query(m) if j != i)
        theirs.clear()
        theirs.update(found)

    with one_core():
        t = best_of(max(2, sizes.repeats), {"ours": ours, "datasketch": datasketch})
    same = set(map(tuple, ours_pairs.tolist())) == theirs
    ratio = t["datasketch"] / t["ours"]
    with_objects = (t["datasketch"] + build_s) / t["ours"]
    # The goal is about scale: on a few hundred documents numpy's fixed costs dominate ours.
    at_scale = n >= 5000
    table.add(
        "lsh",
        f"{name} ({n:,} docs, {bands}x{rows}): ours vs ds insert+query",
        f"{t['ours'] * 1e3:.1f} vs {t['datasketch'] * 1e3:.0f} ms = {ratio:.0f}x "
        f"({with_objects:.0f}x with MinHash objects); same {len(theirs):,} pairs: "
        f"{'yes' if same else 'NO'}",
        f">= {LSH_GOAL:.0f}x" if at_scale else "same set",
        (ratio >= LSH_GOAL and same) if at_scale else same,
    )
    return {
        "docs": n,
        "bands": bands,
        "rows": rows,
        "candidates": len(theirs),
        "seconds": t,
        "minhash_objects_seconds": build_s,
        "ratio": ratio,
        "ratio_with_objects": with_objects,
        "same": same,
    }


# --- 3. precision / recall ------------------------------------------------------------------


@dataclass
class Quality:
    recall: float  # exact-Jaccard verification (the stage default)
    precision: float
    est_recall: float  # signature-estimate verification
    est_precision: float
    candidates: int
    reported: int
    eligible: int  # planted pairs with true Jaccard >= threshold
    caught: dict[str, float]  # kind label -> share of its planted pairs reported (exact verify)


def kind_label(kind: str, level: float) -> str:
    return kind if kind == "exact" else f"{kind} {level:.0%}"


def evaluate(
    corpus: Corpus,
    sets: list[np.ndarray],
    sigs: np.ndarray,
    truth_j: np.ndarray,
    threshold: float,
    bands: int,
    rows: int,
) -> Quality:
    n = len(sets)
    cap = DedupConfig().max_bucket_pairs
    cands = candidate_pairs(band_keys(sigs, bands, rows), max_bucket_pairs=cap)
    cand_j = pair_jaccard(sets, cands)
    rep_exact = cand_j >= threshold
    rep_est = pair_estimate(sigs, cands) >= threshold
    planted = pair_codes(np.array([(a, b) for a, b, _, _ in corpus.pairs]), n)
    codes = pair_codes(cands, n) if len(cands) else np.empty(0, np.int64)
    in_exact = np.isin(planted, codes[rep_exact])
    in_est = np.isin(planted, codes[rep_est])
    eligible = truth_j >= threshold
    labels = np.array([kind_label(k, lv) for _, _, k, lv in corpus.pairs])
    caught = {lab: float(in_exact[labels == lab].mean()) for lab in dict.fromkeys(labels)}

    def share(hits: np.ndarray, of: np.ndarray) -> float:
        return float(hits.sum() / of.sum()) if of.sum() else 1.0

    return Quality(
        recall=share(in_exact & eligible, eligible),
        precision=share(rep_exact & (cand_j >= threshold), rep_exact),
        est_recall=share(in_est & eligible, eligible),
        est_precision=share(rep_est & (cand_j >= threshold), rep_est),
        candidates=len(cands),
        reported=int(rep_exact.sum()),
        eligible=int(eligible.sum()),
        caught=caught,
    )


def by_rate(values: dict[str, float] | np.ndarray, fmt: str = "{:.0f}") -> str:
    """Values per edit rate joined by '/', in EDIT_RATES order."""
    if isinstance(values, dict):
        return "/".join(fmt.format(values[kind_label("edit", e)]) for e in EDIT_RATES)
    return "/".join(fmt.format(v) for v in values)


def bench_quality(table: Table, corpus: Corpus) -> dict[str, Any]:
    """True Jaccard by edit rate, the default config, then the (shingle x threshold) grid."""
    default = DedupConfig()
    planted = np.array([(a, b) for a, b, _, _ in corpus.pairs])
    labels = np.array([kind_label(k, lv) for _, _, k, lv in corpus.pairs])
    data: dict[str, Any] = {"docs": len(corpus.texts), "pairs": len(planted), "true_jaccard": {}}
    features = {}
    for name, shingle in GRID_SHINGLES.items():
        sets, sigs = shingles_and_signatures(corpus.texts, shingle)
        truth = pair_jaccard(sets, planted)
        features[name] = (sets, sigs, truth)
        means = [truth[labels == kind_label("edit", e)].mean() for e in EDIT_RATES]
        lows = [truth[labels == kind_label("edit", e)].min() for e in EDIT_RATES]
        data["true_jaccard"][name] = {"mean": means, "min": lows}
        table.add(
            "true Jaccard",
            f"{name}: mean (min) at edit 1/2/3/5/10/20/30%",
            "/".join(f"{m:.2f}({lo:.2f})" for m, lo in zip(means, lows, strict=True)),
        )

    name = next(k for k, v in GRID_SHINGLES.items() if v == default.shingle)
    bands, rows = resolve_bands(default)
    q = evaluate(corpus, *features[name], default.threshold, bands, rows)
    data["default"] = q.__dict__ | {"bands": bands, "rows": rows}
    sec = "quality default"
    table.add(
        sec,
        f"{name} t={default.threshold} {bands}x{rows}, exact verify: R / P",
        f"{q.recall:.3f} / {q.precision:.3f} ({q.eligible} pairs J>=t, {q.candidates} cand); "
        f"caught % 1..30%: {by_rate({k: v * 100 for k, v in q.caught.items()})}",
        f"R>={RECALL_GOAL} P>={PRECISION_GOAL}",
        q.recall >= RECALL_GOAL and q.precision >= PRECISION_GOAL,
    )
    table.add(
        sec,
        "same, signature-estimate verify: R / P",
        f"{q.est_recall:.3f} / {q.est_precision:.3f}",
        f"R>={RECALL_GOAL} P>={PRECISION_GOAL}",
        q.est_recall >= RECALL_GOAL and q.est_precision >= PRECISION_GOAL,
    )

    # Each shingle choice x threshold, bands and rows from optimal_bands with the default
    # (balanced) weights and with recall-favouring ones; "met" is for the latter, exact verify.
    data["grid"] = {}
    sec = "grid"
    for name, (sets, sigs, truth) in features.items():
        for t in GRID_THRESHOLDS:
            q = {}
            for banding, (fp_w, fn_w) in BANDINGS.items():
                b, r = optimal_bands(t, default.num_perm, fp_w, fn_w)
                q[banding] = evaluate(corpus, sets, sigs, truth, t, b, r)
                at_t = 1 - (1 - t**r) ** b  # the S-curve at the threshold itself
                data["grid"][f"{name}_t{t}_{banding}"] = q[banding].__dict__ | {
                    "bands": b,
                    "rows": r,
                    "p_candidate_at_t": at_t,
                }
            bal, rec = data["grid"][f"{name}_t{t}_bal"], data["grid"][f"{name}_t{t}_rec"]
            g = q["rec"]
            caught = by_rate({k: v * 100 for k, v in g.caught.items()})
            table.add(
                sec,
                f"{name} t={t}: bal {bal['bands']}x{bal['rows']} R | "
                f"rec {rec['bands']}x{rec['rows']} R/P",
                f"{q['bal'].recall:.3f} | {g.recall:.3f}/{g.precision:.3f}, est "
                f"{g.est_recall:.3f}/{g.est_precision:.3f}, P(c|t) {rec['p_candidate_at_t']:.2f}, "
                f"{g.candidates:,} cand; caught {caught}",
                "rec R>=.95 P>=.99",
                g.recall >= RECALL_GOAL and g.precision >= PRECISION_GOAL,
            )
    return data


def anchors_batched(texts: list[str], cfg: DedupConfig) -> tuple[pa.Table, np.ndarray]:
    """The stage's anchor rows and anchors per document, per batch of `dedup.batch_rows`."""
    anchors, counts = [], []
    batch = pa.table({S.DOC_ID: [str(i) for i in range(len(texts))], S.TEXT: texts})
    batch = batch.append_column(S.N_BYTES, pa.array([len(t) for t in texts], pa.int64()))
    for start in range(0, len(texts), cfg.batch_rows):
        keys = document_keys(batch.slice(start, cfg.batch_rows), start, cfg, 1, 1)
        anchors.append(keys.anchors)
        counts.append(keys.docs["n_anchors"].to_numpy())
    return pa.concat_tables(anchors), np.concatenate(counts)


def anchor_pairs(texts: list[str], cfg: DedupConfig) -> tuple[np.ndarray, np.ndarray]:
    """(part, whole) candidates sharing enough anchors, as the stage finds them."""
    anchors, n_anchors = anchors_batched(texts, cfg)
    cc = cfg.containment
    pairs, _ = partial_candidates(
        anchors,
        np.empty(0, np.int64),
        n_anchors,
        cc.threshold,
        cc.min_shared_anchors,
        cfg.max_bucket_pairs,
    )
    return pairs, n_anchors


def containment_recall(
    corpus: Corpus, sets: list[np.ndarray], cc: ContainmentConfig
) -> dict[str, Any]:
    """Anchor candidates, then exact containment; recall by planted excerpt kind."""
    cfg = replace(DedupConfig(), containment=cc)
    started = time.perf_counter()
    pairs, n_anchors = anchor_pairs(corpus.texts, cfg)
    keys_s = time.perf_counter() - started
    cands = {(int(p), int(w)) for p, w in pairs}
    reported = {(p, w) for p, w in cands if containment(sets[p], sets[w]) >= cc.threshold}
    recall = {}
    for kind in ("excerpt", "truncation"):
        for frac in PART_FRACTIONS:
            mine = [(d, b) for b, d, k, lv in corpus.pairs if k == kind and lv == frac]
            el = [(d, b) for d, b in mine if containment(sets[d], sets[b]) >= cc.threshold]
            found = sum((d, b) in reported for d, b in el)
            recall[f"{kind} {frac:.0%}"] = found / len(el) if el else math.nan
    return {
        "docs_per_s": len(corpus.texts) / keys_s,
        "keys_per_doc": float(np.mean(n_anchors)),
        "candidates": len(cands),
        "reported": len(reported),
        "unplanted_reported": len(reported - {(d, b) for b, d, _, _ in corpus.pairs}),
        "recall": recall,
    }


def bench_containment(table: Table, corpus: Corpus) -> dict[str, Any]:
    cfg = DedupConfig()
    cc = cfg.containment
    sets, _ = shingles_and_signatures(corpus.texts, cfg.shingle)
    # The default, sparser anchors, and one shared anchor enough.
    variants = {
        "default": cc,
        "every 16": replace(cc, anchor_every=16),
        "shared 1": replace(cc, min_shared_anchors=1),
    }
    data = {}
    for name, variant in variants.items():
        d = containment_recall(corpus, sets, variant)
        data[name] = d
        recalls = list(d["recall"].values())
        table.add(
            "partial",
            f"{'default ' if name == 'default' else ''}anchors 1/{variant.anchor_every}, "
            f">={variant.min_shared_anchors} shared, c>={variant.threshold}",
            f"excerpt 10/25/50% {by_rate(recalls[:3], '{:.2f}')}, truncation "
            f"{by_rate(recalls[3:], '{:.2f}')}; {d['candidates']:,} cand, "
            f"{d['keys_per_doc']:.0f} keys/doc, {d['docs_per_s']:,.0f} docs/s",
            f"R>={RECALL_GOAL}",
            min(recalls) >= RECALL_GOAL,
        )
    return data


# --- 4. memory ------------------------------------------------------------------------------


def bench_memory(table: Table, corpus: Corpus, sizes: Sizes) -> dict[str, Any]:
    cfg = DedupConfig()
    bands, rows = resolve_bands(cfg)
    n = min(len(corpus.texts), 2000)
    batch = pa.table(
        {
            S.DOC_ID: corpus.ids[:n],
            S.N_BYTES: [len(t.encode()) for t in corpus.texts[:n]],
            S.TEXT: pa.array(corpus.texts[:n], pa.large_string()),
        }
    )
    keys = document_keys(batch, 0, cfg, bands, rows)  # exactly the rows the stage writes
    per_col = {
        f"{name}.{column}": getattr(keys, name)[column].nbytes / n
        for name in ("docs", "digests", "bands", "anchors")
        for column in getattr(keys, name).column_names
    }
    text_b = batch[S.TEXT].nbytes / n
    row_b = sum(per_col.values())
    big = sorted(((v, k) for k, v in per_col.items() if v >= 100), reverse=True)
    table.add(
        "memory/doc",
        "stage work files per doc (Arrow bytes)",
        f"{row_b:,.0f} B = {row_b / text_b:.2f}x text ({text_b:,.0f} B): "
        + ", ".join(f"{k} {v:,.0f}" for v, k in big),
    )

    # Peak RSS growth of the in-memory core, in a fresh process: in this one, memory freed by
    # the earlier sections would be reused and hide the growth.
    n_docs = len(corpus.texts)
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
        core = pool.submit(core_memory, sizes.grid_base, sizes.per_rate).result()
    table.add(
        "memory/doc",
        f"in-memory core, peak RSS growth ({n_docs:,} docs)",
        f"{core['growth'] / (n_docs / 1000) / 2**20:.2f} MiB per 1k docs; arrays held "
        f"{core['held'] / n_docs:,.0f} B/doc",
    )
    return {
        "feature_bytes_per_doc": per_col,
        "text_bytes_per_doc": text_b,
        "peak_rss_growth_per_1k_docs": core["growth"] / (n_docs / 1000),
        "peak_is_vmhwm": core["exact_peak"],
        "arrays_held_per_doc": core["held"] / n_docs,
    }


def core_memory(n_base: int, per_rate: int) -> dict[str, Any]:
    """In a child process: shingles, signatures, band keys, candidates and anchors of the
    grid corpus, batched as in the stage; the peak RSS above the corpus texts themselves."""
    cfg = DedupConfig()
    bands, rows = resolve_bands(cfg)
    texts = make_corpus(n_base, per_rate, seed=1).texts  # the grid corpus, regenerated
    # Load every numba kernel and numpy path first: their code is not per-document memory.
    _, warm_sigs = shingles_and_signatures(texts[:4], cfg.shingle)
    candidate_pairs(band_keys(warm_sigs, bands, rows), cfg.max_bucket_pairs)
    anchors_batched(texts[:4], cfg)
    gc.collect()
    exact_peak = peak_rss_reset()
    base = psutil.Process().memory_info().rss
    sets, sigs = shingles_and_signatures(texts, cfg.shingle)
    keys = band_keys(sigs, bands, rows)
    candidate_pairs(keys, cfg.max_bucket_pairs)
    anchors, _ = anchors_batched(texts, cfg)
    peak = peak_rss() if exact_peak else psutil.Process().memory_info().rss
    held = sum(s.nbytes for s in sets) + sigs.nbytes + keys.nbytes + anchors.nbytes
    return {"growth": peak - base, "held": held, "exact_peak": exact_peak}


# --- 5. the whole stage on Ray --------------------------------------------------------------


def start_ray() -> None:
    # Ray and the runner only for part 5: `--no-stage` (the tests' smoke run) never loads them.
    import ray

    from pipeline.ray_session import configure_ray_data, init_kwargs

    if not ray.is_initialized():
        cluster = ClusterConfig(num_cpus=2, include_dashboard=False, namespace="bench")
        ray.init(**init_kwargs(cluster))
    configure_ray_data(progress=False)
    # Ray Data logs every execution at INFO on the driver: noise around the table.
    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(logging.WARNING)


def run_stage(sources: dict[str, SourceConfig], run_dir: Path, name: str):
    """ingest + dedup through the runner (it reuses the Ray started here)."""
    from pipeline.runner import run_pipeline

    config = Config(
        run=RunConfig(name=name, progress=False, stages=["ingest", "dedup"], resume=False),
        corpus=CorpusConfig(name=name, sources=sources),
        cluster=ClusterConfig(num_cpus=2, include_dashboard=False),
    )
    summary = run_pipeline(config, run_dir / name)
    return summary.stages[0], summary.stages[-1]


def write_corpus(corpus: Corpus, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        for doc_id, text in zip(corpus.ids, corpus.texts, strict=True):
            fh.write(json.dumps({"id": doc_id, "text": text}) + "\n")
    return path


STEP_ABBREV = {"candidates": "cand", "components": "comp", "clusters": "clus", "decide": "dec"}


def bench_stage(table: Table, sizes: Sizes, work: Path, quick: bool) -> dict[str, Any]:
    start_ray()
    if not quick:  # Ray worker start-up, imports, numba cache loads: once, not inside 1x
        path = write_corpus(make_corpus(100, 4, seed=99), work / "warm.jsonl")
        run_stage({"synth": SourceConfig(paths=[str(path)])}, work, "warm")
    data: dict[str, Any] = {}
    per_rate = max(2, sizes.per_rate * sizes.stage_base // sizes.grid_base)
    docs, seconds, found = [], [], []
    sec = "stage 2-CPU Ray"
    for k in (1, 2) if quick else (1, 2, 4):
        corpus = make_corpus(sizes.stage_base * k, per_rate * k, seed=10 + k)
        path = write_corpus(corpus, work / f"x{k}.jsonl")
        ingest, dedup = run_stage({"synth": SourceConfig(paths=[str(path)])}, work, f"x{k}")
        t, x = dedup.seconds, dedup.extra
        docs.append(dedup.rows_in)
        seconds.append(t)
        found.append((x["exact_duplicates"], x["near_duplicates"], x.get("partial_pairs", 0)))
        growth = t / (k * seconds[0])
        steps = " ".join(f"{STEP_ABBREV.get(s, s)} {v:.1f}" for s, v in x["step_seconds"].items())
        table.add(
            sec,
            f"{k}x {dedup.rows_in:,} docs: dedup s, s/1k docs, t/(k*t1)",
            f"{t:.1f} s, {1000 * t / dedup.rows_in:.2f} s/1k, {growth:.2f} (steps s: {steps})",
            f"<= {LINEAR_GOAL}" if k > 1 else "",
            growth <= LINEAR_GOAL if k > 1 else None,
        )
        data[f"x{k}"] = {
            "docs": dedup.rows_in,
            "seconds": t,
            "ingest_seconds": ingest.seconds,
            "linearity": growth,
            "extra": x,
        }
    # t = fixed + marginal * n: the fixed part (every step's Ray Data start-up) flatters
    # t(k) / (k t(1)); it is the marginal cost that must not grow with n.
    per_doc, fixed = np.polyfit(docs, seconds, 1)
    shown = f"fixed {fixed:.1f} s + {per_doc * 1e3:.2f} s/1k docs"
    if len(docs) == 3:
        marginal = (seconds[2] - seconds[1]) / (docs[2] - docs[1])
        marginal /= (seconds[1] - seconds[0]) / (docs[1] - docs[0])
        shown += f"; marginal 2x->4x / 1x->2x {marginal:.2f}"
        data["marginal_ratio"] = marginal
    table.add(sec, "fit t = fixed + marginal * docs", shown)
    table.add(
        sec,
        "found exact / near / partial pairs",
        ", ".join(f"{k}x {e}/{n}/{p}" for k, (e, n, p) in zip((1, 2, 4), found, strict=False)),
    )
    data["fit"] = {"fixed_s": fixed, "per_doc_s": per_doc}
    return data


def bench_real_stage(table: Table, corpus_cfg: CorpusConfig, work: Path) -> dict[str, Any]:
    start_ray()
    _, dedup = run_stage(corpus_cfg.sources, work, "sample")
    x = dedup.extra
    table.add(
        "real sample",
        f"{dedup.rows_in} docs, {dedup.bytes_in / 1e6:.1f} MB, {x['bands']}x{x['rows']}",
        f"dedup {dedup.seconds:.1f} s; exact {x['exact_duplicates']}, near "
        f"{x['near_duplicates']}, partial pairs {x.get('partial_pairs', 0)}; clusters "
        f"{json.dumps(x['cluster_size_histogram'])}",
    )
    return {"docs": dedup.rows_in, "seconds": dedup.seconds, "extra": x}


# --- main -----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> Table:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument("--json", type=Path, help="write all numbers to this JSON file")
    parser.add_argument("--no-stage", action="store_true", help="skip the Ray stage runs")
    parser.add_argument("-v", "--verbose", action="store_true", help="log rows as measured")
    args = parser.parse_args(argv)
    level = logging.INFO if args.verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(message)s")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    sizes = QUICK if args.quick else FULL
    table = Table()
    started = time.perf_counter()
    data = table.data
    data["sizes"] = sizes.__dict__

    corpus = make_corpus(sizes.grid_base, sizes.per_rate, seed=1)
    _, sample_texts, sample_cfg = read_sample()
    shingle = DedupConfig().shingle
    sig_texts = corpus.texts[: sizes.sig_docs]
    data["signatures"] = {
        "synthetic": bench_signatures(table, "synthetic", sig_texts, sizes),
        "sample": bench_signatures(table, "real sample", sample_texts, sizes),
    }
    data["lsh"] = {
        "synthetic": bench_lsh(
            table, "synthetic", shingles_and_signatures(corpus.texts, shingle)[1], sizes
        ),
        "sample": bench_lsh(
            table, "real sample", shingles_and_signatures(sample_texts, shingle)[1], sizes
        ),
    }
    data["quality"] = bench_quality(table, corpus)
    data["containment"] = bench_containment(table, corpus)
    data["memory"] = bench_memory(table, corpus, sizes)
    if not args.no_stage:
        with tempfile.TemporaryDirectory(prefix="bench-dedup-") as tmp:
            data["stage"] = bench_stage(table, sizes, Path(tmp), args.quick)
            if not args.quick:
                data["real_stage"] = bench_real_stage(table, sample_cfg, Path(tmp))
    data["total_seconds"] = time.perf_counter() - started
    mode = "quick" if args.quick else "full"
    table.add("run", "total bench time", f"{data['total_seconds']:.0f} s ({mode})")
    print(table.render())
    data["goals"] = table.goals()
    if args.json:
        write_json(args.json, data)
    return table


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(plain(data), indent=1, allow_nan=False))


def plain(obj: Any) -> Any:
    """JSON-able copy: numpy scalars and arrays to Python, NaN (no eligible pairs) to null."""
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | np.ndarray):
        return [plain(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


if __name__ == "__main__":
    main()
