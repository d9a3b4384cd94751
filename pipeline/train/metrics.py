"""metrics.jsonl of a training run: written by rank 0, read by notebooks.

One JSON object per line: a training row per logged step (step, epoch, loss, aux_loss, lr,
grad_norm, tokens, tokens_per_s, step_time_s) and an evaluation row per held-out evaluation
(step, eval_loss; step 0 is before any training).

    log = MetricsLog(out / "metrics.jsonl", enabled=rank == 0, after_step=resumed_step)
    log.write({"step": 3, "loss": 2.1, ...})
    train_rows, eval_rows = read_metrics(out / "metrics.jsonl")
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.plumbing.atomic import atomic_write_text


class MetricsLog:
    """Append-only JSONL; on resume, rows after the checkpoint's step are dropped first (they
    belong to steps the resumed run will take again)."""

    def __init__(self, path: Path, enabled: bool, after_step: int) -> None:
        self.path, self.enabled = Path(path), enabled
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keep = [r for r in _rows(self.path) if r["step"] <= after_step] if after_step else []
        atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in keep))

    def write(self, row: dict[str, Any]) -> None:
        if self.enabled:
            clean = {k: float(v) if isinstance(v, np.floating) else v for k, v in row.items()}
            with open(self.path, "a") as fh:
                fh.write(json.dumps(clean) + "\n")


def read_metrics(path: Path) -> tuple[list[dict], list[dict]]:
    """(training rows, evaluation rows) of a metrics.jsonl."""
    rows = _rows(Path(path))
    return [r for r in rows if "loss" in r], [r for r in rows if "eval_loss" in r]


def _rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
