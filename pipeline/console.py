"""What a run prints while it works. On a terminal: Ray Data's progress bars. Piped (a file,
CI, `make demo | cat`): one line per running stage every few seconds, then the summary; Ray
Data's progress blocks go to its log file in the Ray session instead of the console.

    with heartbeat("[4/6] rewrite", step=lambda: "generate"):
        ...  # piped: "[4/6] rewrite: running for 10s (generate)", 20s, ... 60s, 90s, ...

    link_ray_logs(session_dir, run_dir / "ray-logs")  # the Ray logs, found from the run
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger("pipeline")

# Ray Data's own non-terminal progress logs a block every 10 s per execution, and a stage runs
# many: about 340 lines on the demo. One line per stage every 10 s for its first minute, then
# every 30 s: a long stage (the rewrite, hours on a cluster) adds 2 lines a minute to a CI log.
PIPED_INTERVAL_S = 10.0
SLOWER_AFTER_S = 60.0


def piped() -> bool:
    """stdout is not a terminal (a file, a pipe, CI): the question Ray Data asks as well."""
    return not sys.stdout.isatty()


def quiet_ray_data_console() -> None:
    """Ray Data's INFO lines (progress blocks, "execution finished", "sink finished") off the
    console; its warnings and errors stay. Everything still reaches ray-data.log in the Ray
    session's logs (its file handler keeps every level)."""
    for handler in logging.getLogger("ray.data").handlers:
        if isinstance(handler, logging.StreamHandler) and not isinstance(
            handler, logging.FileHandler
        ):
            handler.setLevel(logging.WARNING)


@contextmanager
def heartbeat(
    label: str,
    step: Callable[[], str | None] = lambda: None,
    interval: float = PIPED_INTERVAL_S,
) -> Iterator[None]:
    """While open, log `label: running for Ns (step)` from a thread: every `interval` seconds
    for the first SLOWER_AFTER_S, every 3 x `interval` after. Work shorter than one interval
    logs nothing."""
    stop = threading.Event()
    started = time.perf_counter()

    def beat() -> None:
        while not stop.wait(
            interval if time.perf_counter() - started < SLOWER_AFTER_S else 3 * interval
        ):
            current = step()
            log.info(
                "%s: running for %.0fs%s",
                label,
                time.perf_counter() - started,
                f" ({current})" if current else "",
            )

    thread = threading.Thread(target=beat, name=f"heartbeat {label}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def link_ray_logs(session_dir: str | None, link: Path) -> Path | None:
    """Point `link` at this Ray session's logs (workers, the vLLM engines, ray-data.log), which
    the console leaves out; a resumed run points it at its own, newer session. Returns the
    link, or None where the logs are not on this machine (a driver off the cluster's head)."""
    logs = Path(session_dir, "logs") if session_dir else None
    if logs is None or not logs.is_dir():
        return None
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink():
        link.unlink()
    elif link.exists():
        return None  # something of the user's: leave it
    link.symlink_to(logs, target_is_directory=True)
    log.info("Ray's logs: %s -> %s", link, logs)
    return link
