"""Whole-pipeline benchmark: the demo stage by stage (time, rows, tokens/s, peak memory).

    python bench/end_to_end.py                 # the default job, stage by stage (~6 min)
    python bench/end_to_end.py --quick         # smoke run: the CPU stages only, no rewrite
    python bench/end_to_end.py --json out.json

The default job (`conf/config.yaml`, i.e. what `make demo` runs) on the bundled sample, one
stage at a time on one local Ray, so each stage's peak memory is its own: resident memory of
this driver and every process under it (raylet, workers, actors), sampled every 0.2 s, minus
the idle baseline after Ray started.

How the CPU stages grow with the corpus, and the 1 TB projection, are bench/scale.py's (three
seeded corpora of 70 MB to 1.1 GB, where fixed costs are a small share); generation's cost is
per generated token: bench/rewrite.py.
"""

from __future__ import annotations

import os

os.environ.setdefault("RAY_AUTH_MODE", "disabled")

import argparse
import contextlib
import json
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"
CPU_STAGES = ["ingest", "dedup", "quality", "tokenize"]


class RssSampler(threading.Thread):
    """Peak resident memory of this process and all its descendants while it runs."""

    def __init__(self, interval: float = 0.2):
        super().__init__(daemon=True)
        self.interval, self.peak, self._done = interval, 0, threading.Event()

    @staticmethod
    def total_rss() -> int:
        me = psutil.Process()
        total = me.memory_info().rss
        for child in me.children(recursive=True):
            with contextlib.suppress(psutil.Error):  # it ended meanwhile
                total += child.memory_info().rss
        return total

    def run(self) -> None:
        while not self._done.is_set():
            self.peak = max(self.peak, self.total_rss())
            self._done.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self.join()


def compose(overrides: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from pipeline.config import to_config

    with initialize_config_dir(str(ROOT / "conf"), version_base=None):
        return to_config(hydra_compose("config", overrides=overrides))


def run_stage_by_stage(config, run_dir: Path, baseline: int) -> list[dict]:
    """Run config.run.stages one at a time (earlier ones are reused), measuring each."""
    from pipeline.runner import run_pipeline

    stages, rows = list(config.run.stages), []
    for k, name in enumerate(stages):
        config.run.stages = stages[: k + 1]
        with RssSampler() as rss:
            stats = run_pipeline(config, run_dir).stages[-1]
        assert stats.stage == name
        rows.append(
            {
                "stage": name,
                "seconds": stats.seconds,
                "rows_in": stats.rows_in,
                "rows_out": stats.rows_out,
                "mb_in": stats.bytes_in / 1e6,
                "peak_gb": max(rss.peak - baseline, 0) / 2**30,
                "tokens": _tokens(stats),
            }
        )
        print(f"  {name}: {stats.seconds:.1f}s, peak {rows[-1]['peak_gb']:.2f} GB", flush=True)
    config.run.stages = stages
    return rows


def _tokens(stats) -> int | None:
    """Tokens the stage produced: generated tokens (rewrite) or shard tokens (tokenize)."""
    for key in ("output_tokens", "tokens_written"):
        if isinstance(stats.extra.get(key), int):
            return stats.extra[key]
    return None


def table(res: dict) -> str:
    lines = ["## Demo, stage by stage (default job on the bundled sample)", ""]
    lines += ["| stage | seconds | rows in | rows out | MB in | tokens | tokens/s | peak GB |"]
    lines += ["|---|---|---|---|---|---|---|---|"]
    for r in res["demo"]:
        tps = f"{r['tokens'] / r['seconds']:.0f}" if r["tokens"] and r["seconds"] else ""
        lines.append(
            f"| {r['stage']} | {r['seconds']:.1f} | {r['rows_in']:,} | {r['rows_out']:,} | "
            f"{r['mb_in']:.1f} | {r['tokens'] or ''} | {tps} | {r['peak_gb']:.2f} |"
        )
    total = sum(r["seconds"] for r in res["demo"])
    lines += ["", f"Stages total: {total:.0f} s (Ray start and set-up not included).", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: the CPU stages only, no rewrite"
    )
    parser.add_argument("--json", type=Path, help="write every number to this JSON file")
    args = parser.parse_args()

    import ray

    from pipeline.ray_session import configure_ray_data, init_kwargs

    config = compose(["run.progress=false"])
    if args.quick:
        config.run.stages = [s for s in config.run.stages if s in CPU_STAGES]
    ray.init(**init_kwargs(config.cluster))
    configure_ray_data(progress=False, shuffle_strategy=config.cluster.shuffle_strategy)
    time.sleep(2)  # let Ray's own processes settle before the baseline
    baseline = RssSampler.total_rss()
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        work = Path(tmp)
        # A fresh generation cache: the shared one (.cache/generations) would serve generations
        # of an earlier demo run, and the rewrite stage would be timed on cache hits.
        config.rewrite.cache_dir = str(work / "generations")
        print(f"demo stage by stage: {config.run.stages}", flush=True)
        demo = run_stage_by_stage(config, work / "demo", baseline)
    res = {"demo": demo, "goals": []}
    print(table(res))
    if args.json:
        args.json.write_text(json.dumps(res, indent=2, default=str))
    ray.shutdown()


if __name__ == "__main__":
    main()
