"""Run the configured stages in order on Ray, with accounting, resume and a summary.

    from pipeline.runner import run_pipeline
    summary = run_pipeline(config, Path("outputs/my-run"))

Adding a stage is one module with a `Stage` subclass and one entry in `STAGES`.
A stage whose `_SUCCESS` marker carries the same config fingerprint (its own settings and
everything upstream) is skipped on rerun; any change reruns it and every stage after it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path

from omegaconf import OmegaConf

from pipeline.config import Config, ConfigError, validate
from pipeline.console import heartbeat, piped
from pipeline.dedup.stage import DedupStage
from pipeline.ingest.stage import IngestStage
from pipeline.plumbing.atomic import atomic_write_json, atomic_write_text
from pipeline.plumbing.resources import wait_for_a_free_cpu
from pipeline.quality.fidelity_stage import FidelityStage
from pipeline.quality.stage import QualityStage
from pipeline.ray_session import ray_session
from pipeline.rewrite.stage import RewriteStage
from pipeline.runlock import run_lock
from pipeline.security import confined
from pipeline.stage import RunContext, Stage
from pipeline.stats import StageStats, running_step
from pipeline.summary import format_summary
from pipeline.tokens.stage import TokenizeStage

log = logging.getLogger("pipeline")

STAGES: dict[str, type[Stage]] = {
    stage.name: stage
    for stage in (
        IngestStage,
        DedupStage,
        QualityStage,
        RewriteStage,
        FidelityStage,
        TokenizeStage,
    )
}
SUCCESS_MARKER = "_SUCCESS"


@dataclass
class RunSummary:
    run_dir: Path
    stages: list[StageStats] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # stages reused from an earlier attempt

    def table(self) -> str:
        return format_summary(self.stages)

    def to_dict(self) -> dict:
        return {
            "run_dir": str(self.run_dir),
            "stages": [s.to_dict() for s in self.stages],
            "skipped": self.skipped,
        }


def check_config(config: Config) -> None:
    """`validate`, and each stage in run.stages checks what only its code can tell (files):
    every problem of both in one ConfigError."""
    try:
        validate(config, tuple(STAGES))
        problems = []
    except ConfigError as e:
        problems = str(e).splitlines()
    stages = [STAGES[name] for name in config.run.stages if name in STAGES]
    problems += [p for stage in stages for p in stage.check(config)]
    if problems:
        raise ConfigError("\n".join(problems))


def run_pipeline(config: Config, run_dir: Path) -> RunSummary:
    check_config(config)
    run_dir.mkdir(parents=True, exist_ok=True)
    # One run per directory: a second one refuses (RunLocked) before it writes anything.
    with run_lock(run_dir):
        return _run_locked(config, run_dir)


def _run_locked(config: Config, run_dir: Path) -> RunSummary:
    atomic_write_text(run_dir / "config.yaml", OmegaConf.to_yaml(OmegaConf.structured(config)))
    ctx = RunContext(run_dir=run_dir, config=config)
    summary = RunSummary(run_dir=run_dir)
    fp = ""
    total = len(config.run.stages)
    # On a terminal Ray Data draws progress bars; piped, a line per stage every few seconds.
    beat = config.run.progress and piped()
    with ray_session(config.cluster, config.run.progress, logs_link=run_dir / "ray-logs"):
        for i, name in enumerate(config.run.stages):
            stage = STAGES[name](config)
            stage_ctx = replace(
                ctx,
                input_stage=config.run.stages[i - 1] if i else None,
                upstream=tuple((n, STAGES[n].produces) for n in config.run.stages[:i]),
            )
            fp = fingerprint(stage.settings(), fp)
            done = _completed_stats(stage_ctx, name, fp) if config.run.resume else None
            step = f"[{i + 1}/{total}] {name}"
            if done is not None:
                log.info("%s: already complete, reusing its output", step)
                summary.skipped.append(name)
            else:
                log.info("%s: running", step)
                with heartbeat(step, lambda n=name: running_step(n)) if beat else nullcontext():
                    done = _run_stage(stage, stage_ctx, fp)
                log.info(
                    "%s: %s rows in, %s out, %s dropped in %.1fs%s",
                    step,
                    f"{done.rows_in:,}",
                    f"{done.rows_out:,}",
                    f"{done.rows_dropped:,}",
                    done.seconds,
                    _step_times(done),
                )
            summary.stages.append(done)
    atomic_write_json(run_dir / "summary.json", summary.to_dict())
    atomic_write_text(run_dir / "summary.txt", summary.table() + "\n")
    return summary


def _step_times(stats: StageStats) -> str:
    """'; keys 2.7s, exact 0.1s, ...': a multi-step stage's steps (StepTimer), on one line."""
    steps = stats.extra.get("step_seconds") or {}
    return "; " + ", ".join(f"{n} {s:.1f}s" for n, s in steps.items()) if steps else ""


def fingerprint(settings: object, upstream: str) -> str:
    """A hash of a stage's settings chained to its upstream's: any change upstream reruns it."""
    node = OmegaConf.structured(settings) if not isinstance(settings, dict) else settings
    blob = json.dumps(OmegaConf.to_container(OmegaConf.create(node)), sort_keys=True)
    return hashlib.sha256(f"{upstream}\0{blob}".encode()).hexdigest()[:16]


def _run_stage(stage: Stage, ctx: RunContext, fp: str) -> StageStats:
    # A half-written earlier attempt must not leak parts into this one.
    # confined: a stage name is code, not config, but rmtree is no place to trust a name.
    for path in (ctx.stage_dir(stage.name), ctx.quarantine_dir(stage.name)):
        shutil.rmtree(confined(path, ctx.run_dir), ignore_errors=True)
    wait_for_a_free_cpu()  # the previous stage's actors may still hold the cores
    started = time.perf_counter()
    stats = stage.run(ctx)
    stats.seconds = round(time.perf_counter() - started, 3)
    stats.check()
    stage_dir = ctx.stage_dir(stage.name)
    atomic_write_json(stage_dir / "stats.json", stats.to_dict())
    atomic_write_text(stage_dir / SUCCESS_MARKER, fp + "\n")
    return stats


def _completed_stats(ctx: RunContext, name: str, fp: str) -> StageStats | None:
    marker = ctx.stage_dir(name) / SUCCESS_MARKER
    if not marker.is_file() or marker.read_text().strip() != fp:
        return None
    return StageStats.from_dict(json.loads((ctx.stage_dir(name) / "stats.json").read_text()))
