"""Slower polling in the driver while Ray Data runs a stage whose tasks take minutes.

    with slow_driver_polling():
        rewritten.write_datasink(sink)   # the rewrite stage: vLLM batches, minutes each

Ray Data's driver polls on a timer, whatever its tasks are doing: the scheduling loop wakes
every 0.1 s (`ray.wait` with that timeout, then a round of resource and backpressure
bookkeeping), and the thread waiting for the dataset's output sleeps 0.01 s between looks at
its queue. On CPU that is CPU taken from the engine. Measured with Ray 2.60 on 2 cores, the
driver of a pipeline whose one actor sleeps: 0.058 of a core as Ray ships, 0.043 with the
output poll at 0.1 s, 0.021 with the scheduling loop's wait at 0.5 s as well (the rewrite
bench's stage lost ~0.06 of a core to its driver). A task that ends is then noticed up to
0.5 s late, nothing next to a rewrite batch, but a cost for stages of short tasks: only
stages whose tasks run for minutes use this.

Both values are module globals of Ray Data's executor, not a public setting; with a Ray that
no longer has them this does nothing (tests/test_ray_data_polling.py pins them for the Ray
the project installs).
"""

from __future__ import annotations

import logging
import time
import types
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)

RAY_TASK_WAIT_S = 0.1  # Ray Data's WAIT_FOR_TASK_COMPLETION_TIMEOUT_S
RAY_OUTPUT_POLL_S = 0.01  # the sleep in OpState.get_output_blocking
TASK_WAIT_S = 0.5
OUTPUT_POLL_S = 0.1


class _TimeWithSlowerPoll(types.ModuleType):
    """`time` for Ray Data's executor-state module, with its 0.01 s output poll lengthened."""

    def __init__(self, poll_s: float):
        super().__init__("time")
        self._poll_s = poll_s

    def __getattr__(self, name: str):
        return getattr(time, name)

    def sleep(self, seconds: float) -> None:
        time.sleep(self._poll_s if seconds == RAY_OUTPUT_POLL_S else seconds)


def _executor_state():
    try:
        from ray.data._internal.execution import streaming_executor_state
    except ImportError:
        return None
    if not hasattr(streaming_executor_state, "WAIT_FOR_TASK_COMPLETION_TIMEOUT_S"):
        return None
    if getattr(streaming_executor_state, "time", None) is not time:
        return None
    return streaming_executor_state


@contextmanager
def slow_driver_polling(
    task_wait_s: float = TASK_WAIT_S, output_poll_s: float = OUTPUT_POLL_S
) -> Iterator[None]:
    """While open, this process's Ray Data executions poll every `task_wait_s` (their
    scheduling loop) and `output_poll_s` (their output queue); restored on exit."""
    module = _executor_state()
    if module is None:
        log.debug("Ray Data's executor polling is not where this Ray version had it; unchanged")
        yield
        return
    saved_wait = module.WAIT_FOR_TASK_COMPLETION_TIMEOUT_S
    module.WAIT_FOR_TASK_COMPLETION_TIMEOUT_S = task_wait_s
    module.time = _TimeWithSlowerPoll(output_poll_s)
    try:
        yield
    finally:
        module.WAIT_FOR_TASK_COMPLETION_TIMEOUT_S = saved_wait
        module.time = time
