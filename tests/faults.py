"""Fault injection for tests: SIGKILL a Ray worker of *this* test session while it works.

    with WorkerKiller(title="MapWorker(", after=2.0) as killer:
        run_pipeline(...)
    assert killer.killed   # [(pid, process title)]

Ray names a busy worker process after what it runs ("ray::MapWorker(MapBatches(...))" for a
Ray Data actor, "ray::ReadParquet->MapBatches(...)" for a task) and an idle one "ray::IDLE".
Only descendants of this process are candidates, so other Ray clusters on the machine are
never touched. SIGKILL is what the OOM killer or a lost node does: no clean-up runs.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import psutil

# Ray's own processes: killing them tests Ray, not us.
_RAY_INTERNAL = ("IDLE", "DashboardAgent", "RuntimeEnvAgent", "_", "ActorLocationTracker")


class WorkerKiller(threading.Thread):
    def __init__(self, title: str = "", after: float = 0.0, times: int = 1, poll: float = 0.05):
        super().__init__(daemon=True)
        self.title, self.after, self.times, self.poll = title, after, times, poll
        self.killed: list[tuple[int, str]] = []
        self._done = threading.Event()

    def __enter__(self) -> WorkerKiller:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self.join(timeout=5)

    def _busy_worker(self) -> tuple[int, str] | None:
        for child in psutil.Process(os.getpid()).children(recursive=True):
            try:
                title = " ".join(child.cmdline())
            except psutil.Error:
                continue
            if not title.startswith("ray::"):
                continue
            name = title[len("ray::") :].strip()
            if name.startswith(_RAY_INTERNAL) or self.title not in name:
                continue
            return child.pid, name
        return None

    def run(self) -> None:
        while not self._done.is_set() and len(self.killed) < self.times:
            found = self._busy_worker()
            if found is None:
                time.sleep(self.poll)
                continue
            if self._done.wait(self.after):
                return
            pid, name = found
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue  # it finished meanwhile: look for the next one
            self.killed.append((pid, name))
