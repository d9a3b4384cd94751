"""Training progress on the driver's console, read from the metrics file rank 0 writes.

Ray Train workers' logs do not reach the job's console (and a step can take seconds on a
CPU), so the driver tails metrics.jsonl and logs one line per step and per evaluation.

    with MetricsTail(out / "metrics.jsonl", max_steps=20):
        trainer.fit()
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

log = logging.getLogger("pipeline.train")


class MetricsTail(threading.Thread):
    def __init__(self, path: Path, max_steps: int, interval: float = 1.0):
        super().__init__(daemon=True)
        self.path, self.max_steps, self.interval = Path(path), max_steps, interval
        self._done = threading.Event()
        # Rows already in the file belong to an earlier attempt (a resumed run).
        self._offset = self.path.stat().st_size if self.path.exists() else 0

    def __enter__(self) -> MetricsTail:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self.join(timeout=5)
        self._poll()

    def run(self) -> None:
        while not self._done.wait(self.interval):
            self._poll()

    def _poll(self) -> None:
        if not self.path.exists():
            return
        with self.path.open("rb") as fh:
            fh.seek(self._offset)
            chunk = fh.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]  # a line being written waits for next time
        self._offset += len(complete)
        for line in complete.splitlines():
            if line.strip():
                log.info("%s", format_row(json.loads(line), self.max_steps))


def format_row(row: dict, max_steps: int) -> str:
    """One console line for a metrics row (a training step or an evaluation)."""
    step = f"step {row.get('step')}/{max_steps}"
    if "eval_loss" in row:
        return f"{step}: held-out loss {row['eval_loss']:.4f}"
    parts = [step, f"loss {row['loss']:.4f}"]
    if row.get("aux_loss") is not None:
        parts.append(f"router loss {row['aux_loss']:.4f}")
    parts.append(f"lr {row['lr']:.2e}")
    if row.get("tokens_per_s"):
        parts.append(f"{row['tokens_per_s']:,.0f} tokens/s")
    return ", ".join(parts)
