"""One run at a time per run directory: an exclusive lock file that says who holds it.

    with run_lock(run_dir):      # raises RunLocked naming the holder if another run has it
        ...                      # write the run's outputs

The lock is `fcntl.flock` on `<run_dir>/.run.lock`: the kernel releases it when the holder's
file is closed or its process dies, however it dies (SIGKILL, OOM killer, power loss of a
node mounting the run over NFS aside), so a lock left by a killed run never blocks the rerun
that resumes it. The file itself stays: deleting it would let a waiter that opened the old
file and a newcomer that created a new one both "hold" the lock. While held it records pid,
host and start time for the message the second run prints.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_NAME = ".run.lock"


class RunLocked(RuntimeError):
    """Another process is writing this run directory."""


def holder_info() -> dict:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


@contextmanager
def run_lock(run_dir: Path) -> Iterator[Path]:
    """Hold the run directory's lock for the block; RunLocked at once if someone else has it."""
    path = Path(run_dir) / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunLocked(_message(run_dir, _read_holder(fd))) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(holder_info()) + "\n").encode(), 0)
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)  # no stale holder for the next reader; the lock goes with close
    finally:
        os.close(fd)


def _read_holder(fd: int) -> dict | None:
    try:
        return json.loads(os.pread(fd, 4096, 0).decode())
    except (OSError, ValueError):  # the holder has not written its line yet
        return None


def _message(run_dir: Path, holder: dict | None) -> str:
    who = (
        f"pid {holder.get('pid')} on {holder.get('host')}, started {holder.get('started')}"
        if isinstance(holder, dict)
        else "a process that is starting"
    )
    return (
        f"{run_dir} is in use by another run ({who}). Wait for it to finish, or pick another "
        f"run.name. (The lock is {Path(run_dir) / LOCK_NAME}; it goes away with its process.)"
    )
