"""Per-stage accounting: rows in, rows out, rows dropped per reason, bytes, time.

Every stage returns a `StageStats`; the runner calls `check()` before marking the stage
done, so a stage that loses rows fails loudly instead of shipping a smaller dataset.

    stats = StageStats("ingest", rows_in=10, rows_out=8, dropped={"invalid_json": 2})
    stats.check()
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

log = logging.getLogger("pipeline")


class AccountingError(RuntimeError):
    """A stage's rows do not add up: rows_in != rows_out + sum(dropped)."""


@dataclass
class StageStats:
    stage: str
    rows_in: int = 0
    rows_out: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    bytes_in: int = 0
    bytes_out: int = 0
    seconds: float = 0.0
    # Stage-specific counters (normalisations applied, files read, cache hits...).
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rows_dropped(self) -> int:
        return sum(self.dropped.values())

    def check(self) -> None:
        if self.rows_in != self.rows_out + self.rows_dropped:
            raise AccountingError(
                f"stage {self.stage!r} lost track of rows: in={self.rows_in} "
                f"!= out={self.rows_out} + dropped={self.rows_dropped} {self.dropped}"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StageStats:
        return cls(**data)


def merge_counts(counts: Iterable[Mapping[str, int]]) -> dict[str, int]:
    """Sum several {name: count} maps; the result is sorted by name for stable output."""
    total: Counter[str] = Counter()
    for c in counts:
        total.update(c)
    return dict(sorted(total.items()))


# The step each stage is in now, by stage name (StepTimer keeps it): the runner's progress line
# names it while a stage runs, read from its own thread.
_RUNNING_STEPS: dict[str, str] = {}


def running_step(stage: str) -> str | None:
    return _RUNNING_STEPS.get(stage)


class StepTimer:
    """Times the named steps of a multi-step stage, logged at DEBUG: the runner's line for the
    finished stage lists them (stats.extra["step_seconds"]), and piped, its progress line names
    the step running.

    steps = StepTimer("dedup")
    with steps("exact"):
        ...
    stats.extra["step_seconds"] = steps.seconds
    """

    def __init__(self, stage: str):
        self.stage = stage
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        log.debug("%s: %s ...", self.stage, name)
        _RUNNING_STEPS[self.stage] = name
        started = time.perf_counter()
        try:
            yield
        finally:
            _RUNNING_STEPS.pop(self.stage, None)
        self.seconds[name] = round(time.perf_counter() - started, 2)
        log.debug("%s: %s done in %.1fs", self.stage, name, self.seconds[name])
