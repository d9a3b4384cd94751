"""Checkpoints written atomically, and the learning-rate schedule they resume.

A checkpoint is a directory `<output_dir>/checkpoints/step-00000040/` holding `state.pt`
(trainable parameters, optimizer, scheduler, loader position, step, RNG) and `meta.json`.
It is written under a temporary name and renamed into place, so a directory with the final
name is complete; `latest_checkpoint` takes the highest step. Frozen parameters are not saved:
they equal the initial checkpoint's, which `meta.json` names and resume checks.

    save_checkpoint(out, step, {"model": ..., "optimizer": ...}, meta, keep=2)
    path = latest_checkpoint(out)          # None on a fresh run
    step, history = restore(path, meta, model, optimizer, scheduler, loader)
    lr_lambda = warmup_cosine(warmup_steps=10, max_steps=100, min_ratio=0.1)
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

CHECKPOINTS = "checkpoints"
_STEP_DIR = re.compile(r"^step-(\d{8})$")


def warmup_cosine(warmup_steps: int, max_steps: int, min_ratio: float) -> Callable[[int], float]:
    """LR multiplier: linear from 1/warmup to 1 over warmup_steps, cosine to min_ratio after."""

    def multiplier(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        span = max(max_steps - warmup_steps, 1)
        progress = min((step - warmup_steps) / span, 1.0)
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return multiplier


def checkpoint_dir(output_dir: Path, step: int) -> Path:
    return Path(output_dir) / CHECKPOINTS / f"step-{step:08d}"


def save_checkpoint(
    output_dir: Path, step: int, state: dict[str, Any], meta: dict[str, Any], keep: int
) -> Path:
    """Write checkpoint `step` atomically, then delete all but the newest `keep`."""
    final = checkpoint_dir(output_dir, step)
    tmp = final.parent / f".tmp-{final.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        torch.save(state, tmp / "state.pt")
        (tmp / "meta.json").write_text(json.dumps({"step": step, **meta}, indent=2) + "\n")
        for path in tmp.iterdir():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())
        if final.exists():  # the same step again (a rerun after a crash right after saving)
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for old in _step_dirs(output_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(output_dir: Path) -> Path | None:
    steps = _step_dirs(output_dir)
    return steps[-1] if steps else None


def load_checkpoint(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    # weights_only: a checkpoint holds tensors and plain containers only; nothing in it may
    # run code on load (an attacker with write access to the run directory gains nothing).
    state = torch.load(Path(path) / "state.pt", map_location="cpu", weights_only=True)
    meta = json.loads((Path(path) / "meta.json").read_text())
    return state, meta


def _step_dirs(output_dir: Path) -> list[Path]:
    root = Path(output_dir) / CHECKPOINTS
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and _STEP_DIR.match(p.name))


# What a checkpoint must share with the run resuming it: the frozen weights come from `init`,
# the saved parameters are the `trainable` ones, and the loader position is per world size.
RESUME_KEYS = ("init", "trainable", "world_size")


def incompatibility(path: Path, saved: dict[str, Any], meta: dict[str, Any]) -> str | None:
    """Why checkpoint `path` (its meta.json: `saved`) cannot resume this run, or None."""
    for key in RESUME_KEYS:
        if saved.get(key) != meta[key]:
            return (
                f"{path}: saved with {key}={saved.get(key)!r}, this run has {meta[key]!r}; "
                "use another train.output_dir or train.resume=false"
            )
    return None


def trainable_state(model) -> dict[str, torch.Tensor]:
    """The parameters that train (frozen ones equal the initial checkpoint's)."""
    return {n: p.detach().cpu() for n, p in model.named_parameters() if p.requires_grad}


def restore(
    path: Path, meta: dict[str, Any], model, optimizer, scheduler, loader
) -> tuple[int, dict]:
    """Load checkpoint `path` into the live objects; return (step, history).

    Refuses a checkpoint of another initial model, trainable set or world size (its loader
    position and frozen weights would not mean the same thing).
    """
    state, saved = load_checkpoint(path)
    if problem := incompatibility(path, saved, meta):
        raise ValueError(problem)
    missing = set(trainable_state(model)) - set(state["model"])
    result = model.load_state_dict(state["model"], strict=False)
    if result.unexpected_keys or missing:
        raise ValueError(f"{path}: parameters do not match ({result.unexpected_keys or missing})")
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    loader.load_state_dict(state["loader"])
    torch.set_rng_state(state["rng"])
    return int(saved["step"]), dict(saved.get("history", {}))
