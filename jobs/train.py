"""Continue pretraining a model on a pipeline run's token shards, with Ray Train.

Reads <output_root>/<run.name>/tokenize/data (train.data.shards), trains the model preset of the
`model` group (the local MoE by default, its own tokenizer) or train.init=<HF checkpoint dir>,
and writes <output_root>/<run.name>/train/: metrics.jsonl, checkpoints/, summary.json.
Rerunning resumes from the newest checkpoint (train.resume=false starts over).

Local (starts a Ray on 127.0.0.1, stops it at the end):
    python jobs/run.py run.name=demo                 # the pipeline, tokenize stage included
    python jobs/train.py run.name=demo               # train=demo: a short CPU run (minutes)
    python jobs/train.py run.name=demo train=tiny    # a random tiny Mixtral, 2 workers
    python jobs/train.py run.name=demo train.max_steps=40 train.optim.lr=5e-5
    python jobs/train.py run.name=demo 'train.trainable=[model\\.layers\\.(2[4-9])\\.]'
    python jobs/train.py --help                      # every group and key

On a Ray cluster with GPUs (NCCL, one worker per GPU):
    ray job submit --address http://127.0.0.1:8265 --working-dir . -- \
        python jobs/train.py cluster=remote model=olmoe_1b_7b train=gpu run.name=exp1
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

import hydra
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from pipeline.config import ConfigError, to_config

log = logging.getLogger("pipeline.train")


@hydra.main(version_base=None, config_path="../conf", config_name="train_job")
def main(cfg: DictConfig) -> None:
    # No hub access on the local set-up: fail fast instead of retrying downloads.
    if cfg.cluster.address is None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        config = to_config(cfg)
        # torch, transformers and Ray load with these: only once the config is known good, so
        # a config error is reported at once.
        from pipeline.train.ray_train import resolve_plan

        plan = resolve_plan(config)
    except ConfigError as e:
        print("config error:\n  " + str(e).replace("\n", "\n  "), file=sys.stderr)
        sys.exit(2)
    except OmegaConfBaseException as e:
        print(f"config error: {e}", file=sys.stderr)
        sys.exit(2)
    from pipeline.ray_session import ray_session
    from pipeline.train.ray_train import run_training
    from pipeline.train.summary import format_summary

    start = time.perf_counter()
    if plan.train.scaling.num_workers == 0:
        summary = run_training(plan)
    else:
        logs = Path(plan.output_dir, "ray-logs")
        with ray_session(config.cluster, progress=False, logs_link=logs):
            summary = run_training(plan)
    print()
    print(format_summary(summary, time.perf_counter() - start))
    print(f"\ntraining directory: {plan.output_dir}")
    print("  metrics.jsonl (per step), summary.json, checkpoints/ (resume: rerun the command)")


if __name__ == "__main__":
    main()
