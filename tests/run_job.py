"""`jobs/run.py` as a test runs it: in a fresh interpreter (what a user types), or in this one.

The two run the same Hydra entry point, its config checks and its error printing; the fresh
interpreter adds seconds of imports and proves the script itself starts. A test marked `cli`
runs it that way once per behaviour; the other cases of that behaviour call it in process.
"""

from __future__ import annotations

import contextlib
import io
import logging
import runpy
import subprocess
import sys

from conftest import ROOT
from hydra.core.global_hydra import GlobalHydra


def run_job(*overrides: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """python jobs/run.py OVERRIDES..., in a subprocess from the repository root."""
    return subprocess.run(
        [sys.executable, str(ROOT / "jobs" / "run.py"), *overrides],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_job_in_process(*overrides: str) -> subprocess.CompletedProcess:
    """jobs/run.py run as __main__ with OVERRIDES as its command line, in this interpreter
    (Hydra finds conf/ next to the script, as it does from the command line): the exit code,
    stdout and stderr as run_job gives them. For jobs that stop before starting Ray
    (config errors, refusals): a job that runs stages needs the `ray` mark, and run_job."""
    out, err = io.StringIO(), io.StringIO()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    argv = sys.argv
    sys.argv = [str(ROOT / "jobs" / "run.py"), *overrides]
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            runpy.run_path(str(ROOT / "jobs" / "run.py"), run_name="__main__")
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else int(e.code is not None)
    finally:
        sys.argv = argv
        # Hydra leaves its config loaded and the job's log handlers on the root logger.
        GlobalHydra.instance().clear()
        for handler in root.handlers:
            if handler not in handlers:
                handler.close()
        root.handlers[:], root.level = handlers, level
    return subprocess.CompletedProcess(sys.argv, code, out.getvalue(), err.getvalue())
