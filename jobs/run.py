"""Run the pipeline as a Hydra-configured batch job.

Local (starts a Ray on 127.0.0.1, stops it at the end):
    python jobs/run.py                                  # bundled sample corpus
    python jobs/run.py run.name=exp1 corpus.max_doc_bytes=500000
    python jobs/run.py --multirun corpus.batch_rows=256,1024
    python jobs/run.py --help                           # every group and key

On a Ray cluster (the driver runs on the head; cluster=remote joins it), through
jobs/submit.py, which ships this directory with the bundled sample and streams the logs
(a plain `ray job submit --working-dir .` leaves data/sample behind: see jobs/submit.py):
    python jobs/submit.py --address http://127.0.0.1:8265 -- run.name=exp1

Outputs land in outputs/<run.name>/; rerunning the same run.name resumes it.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

# Piped (CI, a file, `make demo | cat`): no tqdm bars from the libraries (Ray Data's Parquet
# sampling, transformers loading and saving weights when the model is first built), each a
# line of redrawn text in a log; the runner prints its own progress lines. tqdm reads TQDM_*
# when it is first imported, so this comes before the imports that load Ray and transformers.
if not sys.stdout.isatty():
    os.environ.setdefault("TQDM_DISABLE", "1")

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from pipeline.config import ConfigError, to_config
from pipeline.runlock import RunLocked
from pipeline.runner import run_pipeline

log = logging.getLogger("pipeline")


@hydra.main(version_base=None, config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> None:
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        config = to_config(cfg)
        summary = run_pipeline(config, run_dir)
    except ConfigError as e:
        print("config error:\n  " + str(e).replace("\n", "\n  "), file=sys.stderr)
        sys.exit(2)
    except OmegaConfBaseException as e:
        print(f"config error: {_one_line(e)}", file=sys.stderr)
        sys.exit(2)
    except RunLocked as e:
        print(f"refused: {e}", file=sys.stderr)
        sys.exit(3)
    print()
    print(summary.table())
    print(f"\nrun directory: {run_dir}")
    print(f"  stage outputs: {run_dir}/<stage>/data/   dropped rows: {run_dir}/quarantine/<stage>/")
    print(f"  stats: {run_dir}/summary.json   resolved config: {run_dir}/config.yaml")
    if (run_dir / "ray-logs").is_symlink():
        print(f"  Ray's logs (workers, the vLLM engine, Ray Data): {run_dir}/ray-logs/")


def _one_line(error: Exception) -> str:
    """OmegaConf errors carry the key on a 'full_key:' line; keep the message and the key."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    key = next(
        (line.split(":", 1)[1].strip() for line in lines if line.startswith("full_key:")), None
    )
    message = lines[0] if lines else type(error).__name__
    return f"{key}: {message}" if key and key not in message else message


if __name__ == "__main__":
    main()
