"""Dedup at corpus scale (issue 14): the whole dedup stage against plain datasketch, one run.

    python bench/dedup_scale.py                     # 20k, 80k and 320k documents
    python bench/dedup_scale.py --quick             # 2k, 4k and 8k: a smoke run (~1 min)
    python bench/dedup_scale.py --sizes 20000,80000 --json out.json
    python bench/dedup_scale.py --quick --no-stage  # corpora and datasketch only, no Ray

Corpus: seeded ~3.5 KB documents of bench/dedup.py's words (Zipf-Mandelbrot over common English
and made-up words, rendered by its `render`), each with one of 40 topics: a quarter of a
document's words come from its topic's own 150-word slice, so documents of one topic share
vocabulary (the negatives an excerpt must not match). Planted derivatives are the same share of
every size, each of a distinct base document: 2% exact copies; 1% each of copies with 1/3/5/10%
word edits (substitutions, insertions, deletions); 2% each of excerpts of 20-60% of a document
with 0/2/5/10% of their words substituted. Each planted pair's exact Jaccard and containment of
its word 5-gram shingle sets (`shingle_hashes_batch`, the stage's default shingles) is stored
with the corpus: JSONL shards of 10k documents cached under --work (/tmp/dedup_scale) by size,
seed and generator version (delete the folder to regenerate); the run directories sit beside it.

Figures (issue 14's goals beside them, "ok" or "BELOW"):
- datasketch: `MinHash.bulk` (num_perm 128) over the same word 5-grams (lowercased, punctuation
  stripped, UTF-8), then `MinHashLSH(threshold=0.6)` insert all + query all; one process,
  shingling included; at the sizes up to --peer-max.
- stage: `run_pipeline` with [ingest, dedup] on a 2-CPU local Ray, after a 200-document warm-up
  run (worker start-up and kernel loads are not per-corpus costs). Ingest runs once per size
  (then reused through the runner's resume); the dedup stage's own seconds (from ingest's output
  to dedup's outputs) are timed with the default config and `dedup.containment.enabled=false`.
  docs/s and the ratio to datasketch's: >= 3x (default) and >= 8x (containment off) at the
  largest size datasketch ran.
- scaling: t(n2) / ((n2 / n1) t(n1)) of consecutive sizes (<= 1.15), beside the fixed cost's
  share of t(n1). 1 TB: seconds x 2 cores / text bytes x 1e12 / 3600 core-hours (<= 100 at the
  largest size).
- memory: peak RSS during the dedup stage, sampled every 0.2 s, of this driver process and of
  each Ray worker (its descendants whose command line holds `ray::` or `default_worker.py`;
  RSS counts the object-store pages a worker touched). Generation, datasketch and scoring run
  in child processes, so the driver holds no corpus; ingest does run in this process first
  (Ray Data's executor keeps some state), so the driver's absolute RSS includes it. The goal is
  on the driver's growth during the dedup stage, which must not grow with the corpus: at most
  16 MiB at every size.
- near quality, from the stage's outputs (<run>/dedup/data and <run>/quarantine/dedup): a pair
  is reported when both documents carry one cluster_id; truth = planted pairs of exact Jaccard
  >= 0.6. recall = true pairs reported / true pairs; precision = reported pairs that are true /
  reported pairs (>= 0.99 both).
- light-edit excerpts: recall per edit rate = excerpts flagged `partial_dup_of` their source (or
  a document of the source's cluster) or clustered with it / all excerpts of that rate (>= 0.95
  up to 5%; "c" is their mean true containment); precision = flagged pairs that are planted
  pairs (either way round, clusters included) / flagged pairs (>= 0.99).
- fixed cost: dedup of the bundled sample (conf/corpus/sample.yaml) on the warm Ray (<= 5 s).
"""

from __future__ import annotations

import os
import sys

# Before numba and Ray load (Ray workers inherit the environment), as bench/dedup.py does.
os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # bench.dedup

import argparse
import concurrent.futures
import itertools
import json
import logging
import math
import multiprocessing as mp
import re
import shutil
import subprocess
import threading
import time
import warnings
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pyarrow.parquet as pq
from datasketch import MinHash, MinHashLSH

from bench.dedup import (
    STEP_ABBREV,
    Corpus,
    Table,
    apply_edits,
    make_vocab,
    read_sample,
    start_ray,
    write_corpus,
    write_json,
)
from pipeline import schema as S
from pipeline.config import (
    ClusterConfig,
    Config,
    ContainmentConfig,
    CorpusConfig,
    DedupConfig,
    RunConfig,
    SourceConfig,
)
from pipeline.runner import SUCCESS_MARKER, run_pipeline
from pipeline.similarity.shingles import shingle_hashes_batch, shingle_strings
from pipeline.stats import StageStats

SOURCE = "synth"
GEN_VERSION = 1  # part of the cache key: bump when the generator changes
SHARD_DOCS = 10_000
GLOBAL_WORDS, TOPICS, TOPIC_WORDS, TOPIC_SHARE = 5000, 40, 150, 0.25
MAX_WORDS = 1024  # longest document: 469 words plus insertions
EXCERPT_EDITS = (0.0, 0.02, 0.05, 0.10)
# (kind, edit rate, share of the corpus)
PLAN = [
    ("exact", 0.0, 0.02),
    *[("edit", rate, 0.01) for rate in (0.01, 0.03, 0.05, 0.10)],
    *[("excerpt", rate, 0.02) for rate in EXCERPT_EDITS],
]
THRESHOLD, NUM_PERM, CORES = 0.6, 128, 2
WARM_DOCS = 200
RATIO_GOALS = {"default": 3.0, "containment off": 8.0}  # x datasketch's docs/s
LINEAR_GOAL = 1.15  # t(n2) / ((n2 / n1) t(n1))
TB_GOAL = 100.0  # core-hours per TB
QUALITY_GOAL = 0.99  # near recall and precision; excerpt precision
EXCERPT_GOAL = 0.95  # excerpt recall up to 5% edits
FIXED_GOAL = 5.0  # seconds for the sample
DRIVER_GROWTH_GOAL = 16 * 2**20  # bytes the driver may grow by during the stage, any size
log = logging.getLogger("bench.dedup_scale")


# --- corpus ---------------------------------------------------------------------------------


def zipf_cdf(n: int) -> np.ndarray:
    cdf = np.cumsum(1.0 / (np.arange(1, n + 1) + 2.7))  # bench/dedup.py's Zipf-Mandelbrot
    return cdf / cdf[-1]


def render_forms(n: int) -> np.ndarray:
    """The form `render` gives the word at each position: 3 if capitalised (first word, or after
    a sentence end) plus 1 for a trailing "." or 2 for a trailing ","."""
    k = np.arange(n, dtype=np.int64)
    end = (k * 2654435761) % 13 == 0
    comma = ~end & ((k * 40503) % 17 == 0)
    capital = np.concatenate([[True], end[:-1]])
    return capital * 3 + np.where(end, 1, np.where(comma, 2, 0))


class Words:
    """Vectorised, seeded word draws with topics, and `render` as one lookup per document."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.vocab = make_vocab(rng, GLOBAL_WORDS + TOPICS * TOPIC_WORDS)
        self.global_cdf, self.topic_cdf = zipf_cdf(GLOBAL_WORDS), zipf_cdf(TOPIC_WORDS)
        forms = [
            (w, w + ".", w + ",", c, c + ".", c + ",") for w in self.vocab for c in [w.capitalize()]
        ]
        self.forms = np.array(forms, dtype=object).ravel()
        self.position_form = render_forms(MAX_WORDS)

    def draw(self, topics: np.ndarray) -> np.ndarray:
        """One word per entry of `topics`: global Zipf, or from that topic's slice."""
        n = len(topics)
        words = np.searchsorted(self.global_cdf, self.rng.random(n), side="right")
        own = self.rng.random(n) < TOPIC_SHARE
        in_topic = np.searchsorted(self.topic_cdf, self.rng.random(int(own.sum())), side="right")
        words[own] = GLOBAL_WORDS + topics[own] * TOPIC_WORDS + in_topic
        return words.astype(np.int32)

    def render(self, tokens: np.ndarray) -> str:
        return " ".join(self.forms[tokens * 6 + self.position_form[: len(tokens)]].tolist())

    def edit(self, tokens: np.ndarray, rate: float, topic: int) -> np.ndarray:
        """round(rate * len) substitutions, insertions and deletions, as bench/dedup.py's."""
        n_edits = round(rate * len(tokens))
        fresh = self.draw(np.full(n_edits, topic)).tolist()
        ops = self.rng.integers(0, 3, n_edits).tolist()
        return np.array(apply_edits(tokens.tolist(), ops, fresh, self.rng), np.int32)

    def excerpt(self, tokens: np.ndarray, rate: float, topic: int) -> np.ndarray:
        """20-60% of the document from a random start, round(rate * len) words substituted."""
        n = round(self.rng.uniform(0.2, 0.6) * len(tokens))
        start = int(self.rng.integers(0, len(tokens) - n + 1))
        part = tokens[start : start + n].copy()
        where = self.rng.choice(n, round(rate * n), replace=False)
        fresh = self.draw(np.full(len(where), topic))
        part[where] = np.where(fresh == part[where], (fresh + 1) % len(self.vocab), fresh)
        return part


def make_scaled_corpus(n_docs: int, seed: int) -> Corpus:
    rng = np.random.default_rng(seed)
    words = Words(rng)
    counts = [(kind, rate, round(share * n_docs)) for kind, rate, share in PLAN]
    n_base = n_docs - sum(c for *_, c in counts)
    topics = rng.integers(TOPICS, size=n_base)
    # ~400 words: ~3.5 KB (topic words are longer than bench/dedup.py's common ones).
    lengths = rng.integers(330, 470, size=n_base)
    docs = np.split(words.draw(np.repeat(topics, lengths)), np.cumsum(lengths)[:-1])
    keys = [f"base-{i:07d}" for i in range(n_base)]
    bases = iter(rng.permutation(n_base).tolist())  # distinct bases: planted pairs never overlap
    pairs = []
    for kind, rate, count in counts:
        for _ in range(count):
            b = next(bases)
            if kind == "exact":
                tokens = docs[b]
            elif kind == "edit":
                tokens = words.edit(docs[b], rate, int(topics[b]))
            else:
                tokens = words.excerpt(docs[b], rate, int(topics[b]))
            keys.append(f"{kind}-{rate:.2f}-{len(pairs):07d}")
            docs.append(tokens)
            pairs.append((b, len(docs) - 1, kind, rate))
    order = rng.permutation(len(docs))  # planted copies spread over shards and batches
    where = np.empty_like(order)
    where[order] = np.arange(len(order))
    corpus = Corpus(ids=[keys[i] for i in order], texts=[words.render(docs[i]) for i in order])
    corpus.pairs = [(int(where[b]), int(where[d]), k, r) for b, d, k, r in pairs]
    return corpus


def pair_truth(corpus: Corpus) -> list[list[Any]]:
    """[base id, derived id, kind, rate, exact Jaccard, containment of derived in base]."""
    needed = sorted({i for b, d, *_ in corpus.pairs for i in (b, d)})
    sets: dict[int, np.ndarray] = {}
    for start in range(0, len(needed), 1024):
        chunk = needed[start : start + 1024]
        values, offsets = shingle_hashes_batch(
            [corpus.texts[i] for i in chunk], DedupConfig().shingle
        )
        sets.update(zip(chunk, np.split(values, offsets[1:-1]), strict=True))
    out = []
    for b, d, kind, rate in corpus.pairs:
        both = len(np.intersect1d(sets[b], sets[d], assume_unique=True))
        jaccard = both / (len(sets[b]) + len(sets[d]) - both)
        out.append([corpus.ids[b], corpus.ids[d], kind, rate, jaccard, both / len(sets[d])])
    return out


def ensure_corpora(sizes: list[int], seed: int, work: str) -> dict[int, dict[str, Any]]:
    return {n: ensure_corpus(n, seed, work) for n in sizes}


def ensure_corpus(n_docs: int, seed: int, work: str) -> dict[str, Any]:
    """Generate (or find cached) the corpus of n_docs; its summary, without the pairs."""
    folder = Path(work) / "corpus" / f"n{n_docs}-s{seed}-v{GEN_VERSION}"
    meta_path = folder / "meta.json"
    if not meta_path.exists():
        started = time.perf_counter()
        shutil.rmtree(folder, ignore_errors=True)  # an interrupted earlier attempt
        corpus = make_scaled_corpus(n_docs, seed)
        pairs = pair_truth(corpus)
        for k, first in enumerate(range(0, n_docs, SHARD_DOCS)):
            shard = slice(first, first + SHARD_DOCS)
            write_corpus(
                Corpus(corpus.ids[shard], corpus.texts[shard]), folder / f"part-{k:05d}.jsonl"
            )
        meta = {
            "docs": n_docs,
            "seed": seed,
            "bytes": sum(len(t.encode()) for t in corpus.texts),
            "generate_seconds": time.perf_counter() - started,
            "pairs": pairs,
        }
        tmp = meta_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(meta))
        tmp.rename(meta_path)  # last: a corpus with its meta.json is complete
        cached = False
    else:
        meta, cached = json.loads(meta_path.read_text()), True
    kinds = sorted({p[2] for p in meta["pairs"]})
    planted = {k: sum(p[2] == k for p in meta["pairs"]) for k in kinds}
    summary = {k: v for k, v in meta.items() if k != "pairs"}
    return {**summary, "folder": str(folder), "cached": cached, "planted": planted}


def corpus_config(corpus: dict[str, Any]) -> CorpusConfig:
    paths = [str(Path(corpus["folder"]) / "part-*.jsonl")]
    return CorpusConfig(name=f"synth{corpus['docs']}", sources={SOURCE: SourceConfig(paths=paths)})


# --- datasketch -----------------------------------------------------------------------------

WORD = re.compile(r"[^\W_]+")  # letters and digits: the stage's words with punctuation "strip"


def word_5grams(text: str) -> list[bytes]:
    words = WORD.findall(text.lower())
    if len(words) < 5:  # as the stage: a short document is one shingle of all its words
        return [" ".join(words).encode()] if words else []
    return [" ".join(words[i : i + 5]).encode() for i in range(len(words) - 4)]


def read_texts(folder: Path) -> list[str]:
    return [
        json.loads(line)["text"]
        for path in sorted(folder.glob("part-*.jsonl"))
        for line in path.open()
    ]


def datasketch_side(folders: dict[int, str]) -> dict[int, dict[str, Any]]:
    """Plain datasketch on each corpus, one process, shingling included in the time."""
    out = {}
    for n, folder in folders.items():
        texts = read_texts(Path(folder))
        for text in texts[:20]:  # the same shingles as the stage's
            strings = shingle_strings(text, DedupConfig().shingle)
            assert set(word_5grams(text)) == {s.encode() for s in strings}
        started = time.perf_counter()
        sigs = MinHash.bulk((word_5grams(t) for t in texts), num_perm=NUM_PERM)
        lsh = MinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM)
        for i, sig in enumerate(sigs):
            lsh.insert(i, sig)
        # Each document finds itself, and every pair is found from both ends.
        candidates = sum(len(lsh.query(sig)) - 1 for sig in sigs) // 2
        seconds = time.perf_counter() - started
        out[n] = {"seconds": seconds, "docs_per_s": n / seconds, "candidates": candidates}
        del texts, sigs, lsh
    return out


# --- the stage ------------------------------------------------------------------------------


def private_bytes(pid: int) -> int:
    """A process's anonymous resident memory (RssAnon): what it allocated itself. RSS also
    counts the pages it touched of Ray's object store (shared memory, sized by the cluster's
    object_store_memory, not by the corpus) and of mapped files (parquet reads)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    return 0


class PeakRss:
    """Peak RSS, and peak private (anonymous) memory, of this process and of each Ray worker
    under it, sampled in a thread."""

    def __init__(self, interval: float = 0.2):
        self.interval, self.me = interval, psutil.Process()
        self.driver_start = self.driver = self.me.memory_info().rss
        self.workers: dict[int, int] = {}
        self.workers_private: dict[int, int] = {}
        self._is_worker: dict[int, bool] = {}  # by pid: read each command line once
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def _sample(self) -> None:
        self.driver = max(self.driver, self.me.memory_info().rss)
        for proc in self.me.children(recursive=True):
            try:
                if proc.pid not in self._is_worker:
                    cmdline = " ".join(proc.cmdline())
                    self._is_worker[proc.pid] = "ray::" in cmdline or "default_worker.py" in cmdline
                if self._is_worker[proc.pid]:
                    rss, private = proc.memory_info().rss, private_bytes(proc.pid)
                    self.workers[proc.pid] = max(self.workers.get(proc.pid, 0), rss)
                    peak = max(self.workers_private.get(proc.pid, 0), private)
                    self.workers_private[proc.pid] = peak
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, OSError):
                pass

    def to_dict(self) -> dict[str, Any]:
        return {
            "driver_peak": self.driver,
            "driver_growth": self.driver - self.driver_start,
            "worker_peak": max(self.workers.values(), default=0),
            "worker_private_peak": max(self.workers_private.values(), default=0),
            "workers": len(self.workers),
        }


def run_stages(corpus: CorpusConfig, run_dir: Path, stages: list[str], dedup: DedupConfig):
    config = Config(
        run=RunConfig(name=run_dir.name, progress=False, stages=stages, resume=True),
        corpus=corpus,
        dedup=dedup,
        cluster=ClusterConfig(num_cpus=CORES, include_dashboard=False),
    )
    return run_pipeline(config, run_dir)


def time_dedup(
    corpus: CorpusConfig, run_dir: Path, dedup: DedupConfig
) -> tuple[StageStats, PeakRss]:
    """Ingest (once: the runner's resume reuses it), then the dedup stage, always rerun."""
    run_stages(corpus, run_dir, ["ingest"], dedup)
    (run_dir / "dedup" / SUCCESS_MARKER).unlink(missing_ok=True)
    with PeakRss() as rss:
        summary = run_stages(corpus, run_dir, ["ingest", "dedup"], dedup)
    assert summary.skipped == ["ingest"], summary.skipped
    return summary.stages[-1], rss


def score(run_dir: str, corpus_folder: str, partial: bool) -> dict[str, Any]:
    """Near-duplicate and excerpt quality of a run's outputs against the planted pairs."""
    meta = json.loads((Path(corpus_folder) / "meta.json").read_text())
    cols = [S.DOC_ID, S.CLUSTER_ID, S.PARTIAL_DUP_OF]
    cluster: dict[str, str | None] = {}
    partial_of: dict[str, str] = {}
    for folder in (Path(run_dir) / "dedup" / "data", Path(run_dir) / "quarantine" / "dedup"):
        for path in sorted(folder.glob("*.parquet")):
            table = pq.read_table(path, columns=cols)
            for doc, cid, of in zip(*(table[c].to_pylist() for c in cols), strict=True):
                cluster[doc] = cid
                if of is not None:
                    partial_of[doc] = of

    def related(a: str | None, b: str) -> bool:
        return a == b or (cluster.get(a) is not None and cluster.get(a) == cluster.get(b))

    planted = [(f"{SOURCE}/{b}", f"{SOURCE}/{d}", jac) for b, d, _, _, jac, _ in meta["pairs"]]
    truth = [(b, d) for b, d, jac in planted if jac >= THRESHOLD]
    # Counted, not listed: a wrong giant cluster must not hang the scoring.
    sizes = Counter(cid for cid in cluster.values() if cid is not None)
    reported = sum(m * (m - 1) // 2 for m in sizes.values())
    found = sum(related(b, d) for b, d in truth)
    out: dict[str, Any] = {
        "near": {
            "truth": len(truth),
            "reported": reported,
            "unplanted": reported - sum(related(b, d) for b, d, _ in planted),
            "recall": found / len(truth) if truth else math.nan,
            "precision": found / reported if reported else math.nan,
        }
    }
    if not partial:
        return out
    partner = {}
    for b, d, _ in planted:
        partner[b], partner[d] = d, b
    recall, containment = {}, {}
    for rate in EXCERPT_EDITS:
        mine = [
            (f"{SOURCE}/{d}", f"{SOURCE}/{b}", con)
            for b, d, kind, r, _, con in meta["pairs"]
            if kind == "excerpt" and r == rate
        ]
        caught = [related(partial_of.get(d), b) or related(d, b) for d, b, _ in mine]
        recall[rate] = float(np.mean(caught)) if mine else math.nan
        containment[rate] = float(np.mean([c for *_, c in mine])) if mine else math.nan
    right = sum(doc in partner and related(of, partner[doc]) for doc, of in partial_of.items())
    out["excerpt"] = {
        "recall": recall,
        "containment": containment,
        "flagged": len(partial_of),
        "precision": right / len(partial_of) if partial_of else math.nan,
    }
    return out


# --- report ---------------------------------------------------------------------------------


class Report(Table):
    """bench/dedup.py's table, with "ok" / "BELOW" beside each goal."""

    def add(
        self, section: str, metric: str, measured: str, goal: str = "", met: bool | None = None
    ):
        super().add(section, metric, measured, goal, met)
        if met is not None:
            self.rows[-1] = (*self.rows[-1][:4], "ok" if met else "BELOW")


def in_child(fn, *args):
    """Run fn in a fresh process, so the driver's memory is a driver's and nothing more."""
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "load average: " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def fmt(x: float, spec: str = "{:.3f}") -> str:
    return "n/a" if x is None or not math.isfinite(x) else spec.format(x)


def speed(docs_per_s: float) -> str:
    return f"{docs_per_s:,.0f} docs/s" if docs_per_s >= 100 else f"{docs_per_s:.3g} docs/s"


def mib(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB"


def bench_stage(table: Report, corpora: dict[int, dict], work: Path, seed: int) -> dict:
    """The dedup stage on each corpus, default and containment off, with its quality."""
    start_ray()
    runs = work / "runs"
    warm = in_child(ensure_corpora, [WARM_DOCS], seed + 1000, str(work))[WARM_DOCS]
    time_dedup(corpus_config(warm), runs / "warm", DedupConfig())  # workers up, kernels loaded
    _, _, sample = read_sample()
    fixed, _ = time_dedup(sample, runs / "sample", DedupConfig())
    table.add(
        "fixed cost",
        f"dedup of the sample ({fixed.rows_in} docs), warm Ray",
        f"{fixed.seconds:.1f} s",
        f"<= {FIXED_GOAL:.0f} s",
        fixed.seconds <= FIXED_GOAL,
    )
    configs = {
        "default": DedupConfig(),
        "containment off": replace(DedupConfig(), containment=ContainmentConfig(enabled=False)),
    }
    results: dict[str, Any] = {"fixed_cost": {"docs": fixed.rows_in, "seconds": fixed.seconds}}
    for n, corpus in corpora.items():
        for name, cfg in configs.items():
            run_dir = runs / f"n{n}-s{seed}"
            stats, rss = time_dedup(corpus_config(corpus), run_dir, cfg)
            results.setdefault(name, {})[n] = {
                "docs": stats.rows_in,
                "bytes": stats.bytes_in,
                "seconds": stats.seconds,
                "docs_per_s": stats.rows_in / stats.seconds,
                "rss": rss.to_dict(),
                "quality": in_child(score, str(run_dir), corpus["folder"], cfg.containment.enabled),
                "extra": stats.extra,
            }
            log.info("%s, %s docs: %s", name, n, results[name][n])
    return results


def report_speed(table: Report, results: dict[str, Any], peers: dict[int, dict]) -> None:
    goal_size = max(peers, default=None)
    for name in RATIO_GOALS:
        for n, r in results[name].items():
            ratio = r["docs_per_s"] / peers[n]["docs_per_s"] if n in peers else math.nan
            r["x_datasketch"] = ratio
            steps = " ".join(
                f"{STEP_ABBREV.get(s, s)} {v:.1f}"
                for s, v in r["extra"].get("step_seconds", {}).items()
            )
            goal = RATIO_GOALS[name] if n == goal_size else None
            table.add(
                f"stage {name}",
                f"{n:,} docs: dedup s, docs/s, x datasketch",
                f"{r['seconds']:.1f} s, {speed(r['docs_per_s'])}, {fmt(ratio, '{:.3g}x')}"
                + (f" (steps s: {steps})" if steps else ""),
                f">= {goal:.0f}x" if goal else "",
                ratio >= goal if goal else None,
            )


def report_runs(table: Report, results: dict[str, Any]) -> None:
    default, fixed_s = results["default"], results["fixed_cost"]["seconds"]
    sizes = sorted(default)
    for name in RATIO_GOALS:
        runs = results[name]
        for a, b in itertools.pairwise(sizes):
            growth = runs[b]["seconds"] / (b / a * runs[a]["seconds"])
            runs[b]["linearity"] = growth
            is_goal = name == "default" and b == sizes[-1]
            table.add(
                "scaling",
                f"{name}: t({b:,}) / ({b / a:g} t({a:,}))",
                f"{growth:.2f} (fixed cost {fixed_s / runs[a]['seconds']:.0%} of t({a:,}))",
                f"<= {LINEAR_GOAL}" if is_goal else "",
                growth <= LINEAR_GOAL if is_goal else None,
            )
    for n in sizes:
        r = default[n]
        r["core_hours_per_tb"] = r["seconds"] * CORES / r["bytes"] * 1e12 / 3600
        is_goal = n == sizes[-1]
        table.add(
            "1 TB projection",
            f"default, from {n:,} docs ({r['bytes'] / 1e6:,.0f} MB)",
            f"{r['core_hours_per_tb']:,.0f} core-hours per TB",
            f"<= {TB_GOAL:.0f}" if is_goal else "",
            r["core_hours_per_tb"] <= TB_GOAL if is_goal else None,
        )
    for n in sizes:
        m, off = default[n]["rss"], results["containment off"][n]["rss"]
        growth = max(m["driver_growth"], off["driver_growth"])
        table.add(
            "peak RSS",
            f"{n:,} docs: driver (growth in stage), max worker",
            f"{mib(m['driver_peak'])} (+{mib(m['driver_growth'])}), {mib(m['worker_peak'])} "
            f"({m['workers']} workers); containment off {mib(off['driver_peak'])}, "
            f"{mib(off['worker_peak'])}",
            f"growth <= {mib(DRIVER_GROWTH_GOAL)}",
            growth <= DRIVER_GROWTH_GOAL,
        )
    for name in RATIO_GOALS:
        for n in sizes:
            q = results[name][n]["quality"]["near"]
            ok = min(q["recall"], q["precision"]) >= QUALITY_GOAL
            table.add(
                "near quality",
                f"{name}, {n:,} docs: recall, precision",
                f"{fmt(q['recall'])}, {fmt(q['precision'])} ({q['truth']} true pairs, "
                f"{q['reported']} reported, {q['unplanted']} unplanted)",
                f">= {QUALITY_GOAL}",
                ok,
            )
    for n in sizes:
        q = default[n]["quality"]["excerpt"]
        recalls = q["recall"]
        shown = ", ".join(
            f"{rate:.0%} {fmt(recalls[rate], '{:.2f}')} (c {fmt(q['containment'][rate], '{:.2f}')})"
            for rate in EXCERPT_EDITS
        )
        ok = all(recalls[r] >= EXCERPT_GOAL for r in EXCERPT_EDITS if r <= 0.05)
        table.add(
            "light-edit excerpts",
            f"{n:,} docs: recall by edit rate",
            shown,
            f">= {EXCERPT_GOAL} to 5%",
            ok,
        )
        table.add(
            "light-edit excerpts",
            f"{n:,} docs: precision of partial_dup_of",
            f"{fmt(q['precision'])} ({q['flagged']} flagged)",
            f">= {QUALITY_GOAL}",
            q["precision"] >= QUALITY_GOAL,
        )


# --- main -----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> Report:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--sizes", default="20000,80000,320000", help="corpus sizes, documents")
    parser.add_argument("--quick", action="store_true", help="sizes 2000,4000,8000: a smoke run")
    parser.add_argument(
        "--peer-max", type=int, help="datasketch up to this size (80000; quick 4000)"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--work", type=Path, default=Path("/tmp/dedup_scale"), help="cache and runs"
    )
    parser.add_argument("--json", type=Path, help="write all numbers to this JSON file")
    parser.add_argument("--no-stage", action="store_true", help="corpora and datasketch only")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s"
    )
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    sizes = [2000, 4000, 8000] if args.quick else sorted(int(s) for s in args.sizes.split(","))
    peer_max = args.peer_max or (4000 if args.quick else 80_000)
    table = Report()
    data = table.data
    data["load_start"] = uptime()
    print(f"start: {data['load_start']}", flush=True)
    started = time.perf_counter()

    corpora = in_child(ensure_corpora, sizes, args.seed, str(args.work))
    for n, c in corpora.items():
        table.add(
            "corpus",
            f"{n:,} docs, {c['bytes'] / 1e6:,.0f} MB ({c['bytes'] / n:,.0f} B/doc)",
            f"planted {json.dumps(c['planted'])}; generated in {c['generate_seconds']:.1f} s"
            + (" (cached)" if c["cached"] else ""),
        )
    peers = in_child(datasketch_side, {n: corpora[n]["folder"] for n in sizes if n <= peer_max})
    for n, p in peers.items():
        table.add(
            "datasketch",
            f"{n:,} docs: bulk + LSH insert/query, 1 process",
            f"{p['seconds']:.1f} s, {p['docs_per_s']:,.0f} docs/s, {p['candidates']:,} candidates",
        )
    data["corpora"], data["datasketch"] = corpora, peers
    if not args.no_stage:
        data["stage"] = bench_stage(table, corpora, args.work, args.seed)
        report_speed(table, data["stage"], peers)
        report_runs(table, data["stage"])
    data["load_end"] = uptime()
    data["total_seconds"] = time.perf_counter() - started
    loads = [data[k].rpartition("load average:")[2].strip() for k in ("load_start", "load_end")]
    table.add("run", "load average at start / end", " / ".join(loads))
    table.add("run", "total bench time", f"{data['total_seconds']:.0f} s")
    print(table.render())
    data["goals"] = table.goals()
    if args.json:
        write_json(args.json, data)
    return table


if __name__ == "__main__":
    main()
