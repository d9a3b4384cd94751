"""CPU stages at corpus scale (issue 16): ingest -> dedup -> quality -> tokenize, three sizes.

    python bench/scale.py                       # ~70 MB, 280 MB and 1.1 GB
    python bench/scale.py --quick               # ~3.5, 7 and 14 MB: a smoke run
    python bench/scale.py --sizes 20000,80000 --json out.json
    python bench/scale.py --write-benchmarks    # also write the 1 TB table into BENCHMARKS.md
    python bench/scale.py --only quality --sizes 20000,80000 --repeat 2   # one stage, rerun

Corpus (`make_corpus`): documents of ~3.5 KB re-mixed from the bundled sample's real text
(Wikipedia, news, plays and prose): each takes a run of consecutive paragraphs of one sample
document (wrapping into the next), and 40% of its words are replaced by words drawn from the
sample's own word frequencies, seeded (any word: its capitals and the punctuation around it
are kept). At the largest size each passage of the 5 MB sample is reused about 240 times, so
the share of 5-grams two reuses keep in common sets how many near-duplicate candidates the
corpus holds beyond the planted ones, and that number grows with the square of the reuse:
at 40% a reuse keeps 0.6^5 = 8% of a passage's 5-grams, two reuses share 0.6%. Version 1
replaced a quarter of the bare lower-case words only (a third of the text never changed),
version 2 a quarter of all words (24%, two reuses share 5.6%): dedup's excerpt candidates
then grew to 52 per document at 320k, and its time 1.19x faster than the corpus. The words
stay English words at English frequencies (the quality rules' stop words, the language id and
the tokenizer see English), while two documents share few word n-grams by chance, as two
documents of a real corpus do.
Planted at a fixed rate, each of an earlier document: 2% exact copies and 2% copies with 3% of
their words changed (dedup removes both). JSONL shards of 10k documents are cached under
--work (/tmp/bench-scale) by size, seed and generator version.

Run: `run_pipeline` with the default config (conf/config.yaml: its dedup, quality, tokenizer
and shards settings) but the synthetic corpus and stages [ingest, dedup, quality, tokenize]
(rewriting costs per generated token: bench/rewrite.py), on a 2-CPU local Ray, one stage at a
time so each stage's memory is its own, after a warm-up run on 2,000 documents (worker start
and kernel loads are not per-corpus costs).

Figures per stage and size: seconds (the runner's clock), MB/s per core (the stage's input
bytes / seconds / cores), peak RSS of the driver and of the largest Ray worker (sampled every
0.2 s) with that worker's peak private memory (RssAnon: RSS also counts the object-store
pages a worker touched, which cluster.object_store_memory bounds, not the corpus; goal: at
most 1.25x from the middle to the largest size), and the growth t(4x) / (4 t(x)) between
consecutive sizes (goal <= 1.15 between the middle and the largest). The fixed cost is each
stage's time on the 2,000-document warm-up corpus, run again: its share of the largest size's
time should be under 5%.

1 TB projection, from the largest run: core-hours per TB = cores x seconds / input bytes x
1e12 / 3600 per stage, assuming throughput per core stays what it was here (the scaling rows
say how well that held) and a stage's input is the previous stage's output (dedup and quality
see less than 1 TB; the table states each stage's share of the raw bytes). Wall time on N nodes
of M cores = core-hours / (N x M), with every core busy.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # bench.*

import argparse
import itertools
import json
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from bench.dedup import read_sample
from bench.dedup_scale import PeakRss, uptime

ROOT = Path(__file__).resolve().parents[1]
CORES = 2
STAGES = ["ingest", "dedup", "quality", "tokenize"]
SIZES = [20_000, 80_000, 320_000]  # ~70 MB, 280 MB, 1.1 GB
QUICK_SIZES = [1_000, 2_000, 4_000]
WARM_DOCS = 2_000
GENERATOR_VERSION = 3
TARGET_BYTES = 3_500
SUBSTITUTED = 0.4  # share of a fresh document's words replaced
EXACT, NEAR, NEAR_EDITS = 0.02, 0.02, 0.03
SHARD_DOCS = 10_000
GROWTH_GOAL = 1.15
MEMORY_GROWTH_GOAL = 1.25  # flat: 4x the corpus, at most a quarter more (allocator noise)
FIXED_SHARE_GOAL = 0.05
CLUSTERS = [(4, 32), (16, 64)]  # (nodes, cores per node) for the wall-time projection
PLAIN_WORD = re.compile(r"^[a-z]+$")
# A word as punctuation before, letters, punctuation after ("(Paris," -> "(", "Paris", ",").
WORD_SHAPE = re.compile(r"^([^A-Za-z]*)([A-Za-z]+)([^A-Za-z]*)$")
BENCH_BEGIN, BENCH_END = "<!-- bench/scale.py begin -->", "<!-- bench/scale.py end -->"


# --- corpus -----------------------------------------------------------------------------------


class Remixer:
    """Fresh documents from the sample's paragraphs, a share of their words resampled."""

    def __init__(self, texts: list[str], rng: np.random.Generator):
        self.rng = rng
        self.paragraphs = [
            [p.split(" ") for p in text.split("\n") if p.strip()] for text in texts if text.strip()
        ]
        counts = Counter(
            w for doc in self.paragraphs for p in doc for w in p if PLAIN_WORD.match(w)
        )
        self.vocab = np.array(list(counts))
        freq = np.array(list(counts.values()), dtype=np.float64)
        self.cdf = np.cumsum(freq / freq.sum())
        sizes = np.array([sum(len(w) + 1 for p in d for w in p) for d in self.paragraphs], float)
        self.doc_cdf = np.cumsum(sizes / sizes.sum())  # longer documents are picked more

    def words(self, n: int) -> np.ndarray:
        return self.vocab[
            np.minimum(np.searchsorted(self.cdf, self.rng.random(n)), len(self.vocab) - 1)
        ]

    def fresh(self) -> str:
        d = int(np.searchsorted(self.doc_cdf, self.rng.random()))
        doc = self.paragraphs[min(d, len(self.paragraphs) - 1)]
        p = int(self.rng.integers(len(doc)))
        out, size = [], 0
        while size < TARGET_BYTES:
            words = list(doc[p % len(doc)])
            chosen = np.flatnonzero(self.rng.random(len(words)) < SUBSTITUTED)
            for i, new in zip(chosen, self.words(len(chosen)), strict=True):
                shape = WORD_SHAPE.match(words[i])
                if shape:
                    before, old, after = shape.groups()
                    new = str(new).capitalize() if old[0].isupper() else str(new)
                    words[i] = before + new + after
            line = " ".join(words)
            out.append(line)
            size += len(line) + 1
            p += 1
        return "\n".join(out)

    def edited(self, text: str) -> str:
        words = text.split(" ")
        for i in self.rng.choice(
            len(words), size=max(1, int(len(words) * NEAR_EDITS)), replace=False
        ):
            words[i] = str(self.words(1)[0])
        return " ".join(words)


def make_corpus(n_docs: int, seed: int, folder: Path) -> dict[str, Any]:
    """Write the corpus as JSONL shards into folder (cached by size, seed, version)."""
    meta_path = folder / "meta.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("version") == GENERATOR_VERSION:
            return {**meta, "cached": True}
    started = time.perf_counter()
    _, texts, _ = read_sample()
    rng = np.random.default_rng(seed)
    remix = Remixer(texts, rng)
    folder.mkdir(parents=True, exist_ok=True)
    recent: list[str] = []  # earlier documents a planted copy may take (the last 1,000)
    planted = Counter()
    n_bytes = 0
    for shard in range(0, n_docs, SHARD_DOCS):
        lines = []
        for i in range(shard, min(n_docs, shard + SHARD_DOCS)):
            r = rng.random()
            if recent and r < EXACT:
                text, kind = recent[int(rng.integers(len(recent)))], "exact"
            elif recent and r < EXACT + NEAR:
                text, kind = remix.edited(recent[int(rng.integers(len(recent)))]), "near"
            else:
                text, kind = remix.fresh(), "fresh"
                recent = [*recent[-999:], text]
            planted[kind] += 1
            n_bytes += len(text.encode("utf-8"))
            lines.append(json.dumps({"id": f"s{seed}-{i}", "text": text}))
        (folder / f"part-{shard // SHARD_DOCS:05d}.jsonl").write_text("\n".join(lines) + "\n")
    meta = {
        "version": GENERATOR_VERSION,
        "docs": n_docs,
        "bytes": n_bytes,
        "planted": dict(planted),
        "seed": seed,
        "generate_s": round(time.perf_counter() - started, 1),
    }
    meta_path.write_text(json.dumps(meta))
    return {**meta, "cached": False}


# --- runs -------------------------------------------------------------------------------------


def base_config():
    from hydra import compose, initialize_config_dir

    from pipeline.config import to_config

    with initialize_config_dir(str(ROOT / "conf"), version_base=None):
        return to_config(compose("config"))


def run_config(folder: Path, name: str):
    from pipeline.config import ClusterConfig, CorpusConfig, SourceConfig

    config = base_config()
    config.corpus = CorpusConfig(
        name=name, sources={"remix": SourceConfig(paths=[str(folder / "part-*.jsonl")])}
    )
    config.run.name = name
    config.run.progress = False
    config.run.stages = list(STAGES)
    config.cluster = ClusterConfig(num_cpus=CORES, include_dashboard=False)
    return config


def run_stages(folder: Path, run_dir: Path) -> list[dict[str, Any]]:
    """Each stage on its own (the earlier ones reused), with its peak memory."""
    from pipeline.runner import run_pipeline

    config = run_config(folder, run_dir.name)
    rows = []
    for k, stage in enumerate(STAGES):
        config.run.stages = STAGES[: k + 1]
        with PeakRss() as rss:
            stats = run_pipeline(config, run_dir).stages[-1]
        assert stats.stage == stage, stats.stage
        rows.append(
            {
                "stage": stage,
                "seconds": stats.seconds,
                "rows_in": stats.rows_in,
                "rows_out": stats.rows_out,
                "bytes_in": stats.bytes_in,
                "mb_per_s_core": stats.bytes_in / 1e6 / stats.seconds / CORES,
                # Where a stage's time went (its StepTimer): what to look at when it grows.
                "step_seconds": stats.extra.get("step_seconds"),
                **rss.to_dict(),
            }
        )
        print(
            f"  {stage}: {stats.seconds:.1f} s, {rows[-1]['mb_per_s_core']:.2f} MB/s per core, "
            f"worker peak {rss.to_dict()['worker_peak'] / 2**20:,.0f} MiB; steps "
            f"{stats.extra.get('step_seconds')}",
            flush=True,
        )
    return rows


def run_only(folder: Path, run_dir: Path, stage: str) -> dict[str, Any]:
    """`stage` alone, rerun: the stages before it run once and are reused from run_dir (the
    runner's resume), so a change to the stage's code is timed without redoing its input."""
    from pipeline.runner import run_pipeline

    config = run_config(folder, run_dir.name)
    config.run.stages = STAGES[: STAGES.index(stage) + 1]
    (run_dir / stage / "_SUCCESS").unlink(missing_ok=True)
    load = uptime()
    with PeakRss() as rss:
        summary = run_pipeline(config, run_dir)
    stats = summary.stages[-1]
    assert stats.stage == stage and stage not in summary.skipped, (stats.stage, summary.skipped)
    row = {
        "stage": stage,
        "seconds": stats.seconds,
        "bytes_in": stats.bytes_in,
        "mb_per_s_core": stats.bytes_in / 1e6 / stats.seconds / CORES,
        "step_seconds": stats.extra.get("step_seconds"),
        "uptime": load,
        **rss.to_dict(),
    }
    print(
        f"  {stage}: {stats.seconds:.1f} s, {row['mb_per_s_core']:.2f} MB/s per core "
        f"({stats.bytes_in / 1e6:,.0f} MB in), worker peak {row['worker_peak'] / 2**20:,.0f} "
        f"MiB; steps {row['step_seconds']}; before: {load}",
        flush=True,
    )
    return row


def main_only(args, sizes: list[int]) -> None:
    """--only STAGE: the stage on the warm-up corpus (warm workers), then on each size,
    --repeat times; run directories under --work/only are kept for the next call."""
    import ray

    from pipeline.config import ClusterConfig
    from pipeline.ray_session import configure_ray_data, init_kwargs

    for n in sizes:
        meta = args.work / f"corpus-{n}-{args.seed}" / "meta.json"
        if not meta.exists():
            raise SystemExit(f"--only needs the corpus built: no {meta} (run without --only)")
    make_corpus(WARM_DOCS, args.seed + 1000, args.work / f"corpus-{WARM_DOCS}-{args.seed}")
    only_dir = args.work / "only"
    ray.init(**init_kwargs(ClusterConfig(num_cpus=CORES, include_dashboard=False)))
    configure_ray_data(progress=False)
    rows = []
    try:
        print("warm-up", flush=True)
        run_only(args.work / f"corpus-{WARM_DOCS}-{args.seed}", only_dir / "warm", args.only)
        for n in sizes:
            for _ in range(args.repeat):
                print(f"{n:,} documents", flush=True)
                row = run_only(args.work / f"corpus-{n}-{args.seed}", only_dir / f"n{n}", args.only)
                rows.append({"docs": n, **row})
    finally:
        ray.shutdown()
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2, default=str))


# --- report -----------------------------------------------------------------------------------


def growth(runs: list[dict], stage: str) -> list[dict[str, Any]]:
    """t(n2) / ((bytes2 / bytes1) t(n1)) of consecutive sizes, for one stage."""
    out = []
    for small, large in itertools.pairwise(runs):
        a = next(r for r in small["stages"] if r["stage"] == stage)
        b = next(r for r in large["stages"] if r["stage"] == stage)
        factor = large["bytes"] / small["bytes"]
        out.append(
            {
                "from": small["docs"],
                "to": large["docs"],
                "ratio": b["seconds"] / (factor * a["seconds"]),
            }
        )
    return out


def projection(largest: dict) -> list[dict[str, Any]]:
    raw = largest["bytes"]
    rows = []
    for r in largest["stages"]:
        share = r["bytes_in"] / raw  # of the raw corpus, what this stage reads
        core_hours = CORES * r["seconds"] / raw * 1e12 / 3600  # per TB of raw text
        rows.append({"stage": r["stage"], "input_share": share, "core_hours_per_tb": core_hours})
    return rows


def table(res: dict) -> str:
    runs = res["runs"]
    lines = [
        f"start: {res['uptime_start']}",
        f"end:   {res['uptime_end']}",
        "",
        "corpus: "
        + "; ".join(
            f"{r['docs']:,} docs, {r['bytes'] / 1e6:,.0f} MB (planted {r['planted']})" for r in runs
        ),
        "",
        "| stage | "
        + " | ".join(
            f"{r['bytes'] / 1e6:,.0f} MB: s, MB/s/core, driver / worker peak (private) MiB"
            for r in runs
        )
        + " | fixed cost share at the largest |",
        "|---|" + "---|" * (len(runs) + 1),
    ]
    fixed = {r["stage"]: r["seconds"] for r in res["fixed"]}
    for stage in STAGES:
        cells = []
        for run in runs:
            r = next(x for x in run["stages"] if x["stage"] == stage)
            cells.append(
                f"{r['seconds']:.1f} s, {r['mb_per_s_core']:.2f}, "
                f"{r['driver_peak'] / 2**20:,.0f} / {r['worker_peak'] / 2**20:,.0f} "
                f"({r.get('worker_private_peak', 0) / 2**20:,.0f})"
            )
        last = next(x for x in runs[-1]["stages"] if x["stage"] == stage)
        lines.append(
            f"| {stage} | " + " | ".join(cells) + f" | {fixed[stage] / last['seconds']:.1%} |"
        )
    lines += ["", "| stage | growth t(4x) / (4 t(x)) per pair of sizes | goal |", "|---|---|---|"]
    for stage in STAGES:
        pairs = ", ".join(
            f"{g['from']:,}->{g['to']:,}: {g['ratio']:.2f}" for g in growth(runs, stage)
        )
        lines.append(f"| {stage} | {pairs} | <= {GROWTH_GOAL} (last pair) |")
    lines += [
        "",
        f"1 TB projection from the {runs[-1]['bytes'] / 1e6:,.0f} MB run ({CORES} cores):",
        "",
        "| stage | reads (share of raw bytes) | core-hours per TB of raw text | "
        + " | ".join(f"wall on {n} x {m} cores" for n, m in CLUSTERS)
        + " |",
        "|---|---|---|" + "---|" * len(CLUSTERS),
    ]
    total = 0.0
    for p in res["projection"]:
        total += p["core_hours_per_tb"]
        walls = " | ".join(f"{p['core_hours_per_tb'] / (n * m):.2f} h" for n, m in CLUSTERS)
        lines.append(
            f"| {p['stage']} | {p['input_share']:.2f} | {p['core_hours_per_tb']:,.0f} | {walls} |"
        )
    walls = " | ".join(f"{total / (n * m):.2f} h" for n, m in CLUSTERS)
    lines.append(f"| all four | | {total:,.0f} | {walls} |")
    lines += [
        "",
        "Assumptions: throughput per core as measured here holds on the cluster (the growth rows "
        "say how well it held from the middle to the largest size); every core busy; the "
        "corpus's duplicate and drop rates are this corpus's; rewriting is not included "
        "(bench/rewrite.py).",
    ]
    return "\n".join(lines)


def write_benchmarks(text: str) -> None:
    path = ROOT / "BENCHMARKS.md"
    doc = path.read_text()
    block = f"{BENCH_BEGIN}\n## CPU stages at corpus scale (bench/scale.py)\n\n{text}\n{BENCH_END}"
    if BENCH_BEGIN in doc:
        doc = doc[: doc.index(BENCH_BEGIN)] + block + doc[doc.index(BENCH_END) + len(BENCH_END) :]
    else:
        doc = doc.rstrip() + "\n\n" + block + "\n"
    path.write_text(doc)


def goals(res: dict) -> list[dict[str, Any]]:
    runs = res["runs"]
    out = []
    for stage in STAGES:
        last = growth(runs, stage)[-1]["ratio"]
        out.append(
            {
                "name": f"{stage}: t(4x) / (4 t(x)), middle to largest",
                "measured": round(last, 3),
                "goal": f"<= {GROWTH_GOAL}",
                "met": last <= GROWTH_GOAL,
            }
        )
    for stage in STAGES:
        # Memory a stage's workers allocated themselves (RssAnon), largest size over middle:
        # batch- and partition-bound memory stays flat as the corpus grows 4x.
        middle, largest = (
            next(r for r in run["stages"] if r["stage"] == stage) for run in runs[-2:]
        )
        ratio = largest.get("worker_private_peak", 0) / max(middle.get("worker_private_peak", 0), 1)
        out.append(
            {
                "name": f"{stage}: largest worker's private memory, largest / middle size",
                "measured": round(ratio, 2),
                "goal": f"<= {MEMORY_GROWTH_GOAL}",
                "met": ratio <= MEMORY_GROWTH_GOAL,
            }
        )
    quality = next(p for p in res["projection"] if p["stage"] == "quality")
    out.append(
        {
            "name": "quality core-hours per TB",
            "measured": round(quality["core_hours_per_tb"], 1),
            "goal": "<= 100",
            "met": quality["core_hours_per_tb"] <= 100,
        }
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--sizes", help="documents per size, comma-separated (default 20k,80k,320k)"
    )
    parser.add_argument("--quick", action="store_true", help="1k, 2k, 4k documents")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench-scale"))
    parser.add_argument("--json", type=Path)
    parser.add_argument("--write-benchmarks", action="store_true")
    parser.add_argument(
        "--only", choices=STAGES, help="time this stage alone (earlier ones kept under --work/only)"
    )
    parser.add_argument("--repeat", type=int, default=1, help="with --only: runs per size")
    args = parser.parse_args()
    sizes = (
        [int(s) for s in args.sizes.split(",")]
        if args.sizes
        else QUICK_SIZES
        if args.quick
        else SIZES
    )

    if args.only:
        main_only(args, sizes)
        return

    import shutil

    import ray

    from pipeline.config import ClusterConfig
    from pipeline.ray_session import configure_ray_data, init_kwargs

    res: dict[str, Any] = {"uptime_start": uptime(), "sizes": sizes, "runs": []}
    print(res["uptime_start"], flush=True)
    corpora = {}
    for n in [WARM_DOCS, *sizes]:
        corpora[n] = make_corpus(
            n, args.seed + (1000 if n == WARM_DOCS else 0), args.work / f"corpus-{n}-{args.seed}"
        )
        made = "cached" if corpora[n]["cached"] else "generated"
        print(f"corpus {n:,} docs: {corpora[n]['bytes'] / 1e6:,.0f} MB ({made})", flush=True)
    runs_dir = args.work / "runs"
    shutil.rmtree(runs_dir, ignore_errors=True)
    ray.init(**init_kwargs(ClusterConfig(num_cpus=CORES, include_dashboard=False)))
    configure_ray_data(progress=False)
    try:
        print("warm-up", flush=True)
        run_stages(args.work / f"corpus-{WARM_DOCS}-{args.seed}", runs_dir / "warm")
        print("fixed cost (the warm-up corpus again)", flush=True)
        res["fixed"] = run_stages(args.work / f"corpus-{WARM_DOCS}-{args.seed}", runs_dir / "fixed")
        for n in sizes:
            print(f"{n:,} documents", flush=True)
            stages = run_stages(args.work / f"corpus-{n}-{args.seed}", runs_dir / f"n{n}")
            res["runs"].append({**corpora[n], "stages": stages})
            shutil.rmtree(runs_dir / f"n{n}", ignore_errors=True)  # disk: 1.1 GB of shards each
    finally:
        ray.shutdown()
    res["projection"] = projection(res["runs"][-1])
    res["uptime_end"] = uptime()
    res["goals"] = goals(res)
    text = table(res)
    print()
    print(text)
    if args.write_benchmarks:
        write_benchmarks(text)
    if args.json:
        args.json.write_text(json.dumps(res, indent=2, default=str))


if __name__ == "__main__":
    main()
