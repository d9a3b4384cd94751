"""slow_driver_polling: lengthens Ray Data's driver polls while open, restores them after, and
finds them where the installed Ray keeps them (a Ray upgrade that moves them fails here). And
the Parquet read path a session picks (one file per read task)."""

from __future__ import annotations

import time
from types import SimpleNamespace

from ray.data import DataContext
from ray.data._internal.execution import streaming_executor_state as executor_state

from pipeline import ray_data_polling as polling
from pipeline import ray_session


def test_the_installed_ray_has_the_polls_this_module_changes():
    assert executor_state.WAIT_FOR_TASK_COMPLETION_TIMEOUT_S == polling.RAY_TASK_WAIT_S
    assert executor_state.time is time
    assert polling._executor_state() is executor_state


def test_polls_are_slower_inside_and_restored_after(monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    with polling.slow_driver_polling(task_wait_s=0.7, output_poll_s=0.2):
        assert executor_state.WAIT_FOR_TASK_COMPLETION_TIMEOUT_S == 0.7
        executor_state.time.sleep(polling.RAY_OUTPUT_POLL_S)  # the output queue's poll
        executor_state.time.sleep(3.0)  # any other sleep is left alone
        assert executor_state.time.perf_counter is time.perf_counter
    assert slept == [0.2, 3.0]
    assert executor_state.WAIT_FOR_TASK_COMPLETION_TIMEOUT_S == polling.RAY_TASK_WAIT_S
    assert executor_state.time is time


def test_restored_when_the_stage_fails():
    try:
        with polling.slow_driver_polling():
            raise RuntimeError("stage failed")
    except RuntimeError:
        pass
    assert executor_state.WAIT_FOR_TASK_COMPLETION_TIMEOUT_S == polling.RAY_TASK_WAIT_S
    assert executor_state.time is time


def test_nested_use_changes_nothing_twice():
    with polling.slow_driver_polling(task_wait_s=0.5):
        with polling.slow_driver_polling(task_wait_s=2.0):
            assert executor_state.WAIT_FOR_TASK_COMPLETION_TIMEOUT_S == 0.5
        assert executor_state.WAIT_FOR_TASK_COMPLETION_TIMEOUT_S == 0.5
    assert executor_state.time is time


def test_parquet_is_read_one_file_per_task_unless_the_user_chose(monkeypatch):
    assert hasattr(DataContext.get_current(), "use_datasource_v2")  # the installed Ray's switch
    monkeypatch.delenv(ray_session._PARQUET_V2_SWITCH, raising=False)
    ctx = SimpleNamespace(use_datasource_v2=True)
    ray_session.read_parquet_one_file_per_task(ctx)
    assert ctx.use_datasource_v2 is False
    monkeypatch.setenv(ray_session._PARQUET_V2_SWITCH, "1")
    ctx = SimpleNamespace(use_datasource_v2=True)
    ray_session.read_parquet_one_file_per_task(ctx)
    assert ctx.use_datasource_v2 is True  # the user's choice stands
    older = SimpleNamespace()  # a Ray without the switch: nothing to set
    monkeypatch.delenv(ray_session._PARQUET_V2_SWITCH)
    ray_session.read_parquet_one_file_per_task(older)
    assert not hasattr(older, "use_datasource_v2")
