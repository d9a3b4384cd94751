"""Submit the pipeline to a Ray cluster: ship this directory, stream the job's logs, report the run.

    python jobs/submit.py --address http://<head>:8265 -- run.name=exp1 model=qwen3_30b_a3b \
        run.output_root=/shared/outputs
    python jobs/submit.py --dry-run -- run.name=exp1     # what would be shipped and run
    python jobs/submit.py --script jobs/train.py -- run.name=exp1 model=olmoe_1b_7b train=gpu

It runs `python jobs/run.py cluster=remote <overrides>` as a Ray job (the driver runs on the
head; cluster=remote joins the job's cluster through RAY_ADDRESS), prints the logs until the
job ends, exits 1 if it failed, and prints the run directory. The working directory ships
without .git, .venv, .cache, outputs and whatever .gitignore lists, except data/sample (the
~3 MB bundled corpus, so the default corpus=sample works anywhere; --no-sample leaves it out).
Other corpora must be readable at the same path on every node (a shared filesystem); relative
paths resolve inside the job's copy of the working directory. The same holds for outputs:
pass run.output_root=<shared path>, or they stay in that copy on the head, which Ray deletes.

A local head to try it on, from the activated .venv (the job's `python` is the head's), on
loopback only (the second variable keeps `ray start` from swapping 127.0.0.1 for the machine's
address). Stop it with Ctrl-C or `kill <pid>`, not `ray stop`, which stops every Ray here:
    RAY_AUTH_MODE=disabled RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 ray start --head --block \
        --node-ip-address=127.0.0.1 --dashboard-host=127.0.0.1 --num-cpus 2
    RAY_AUTH_MODE=disabled python jobs/submit.py -- run.output_root=$PWD/outputs

The plain Ray CLI equivalent (respects .gitignore, so data/sample stays behind: give the
corpus as shared paths, or run `python jobs/submit.py --dry-run` for a command that ships it):
    ray job submit --address http://127.0.0.1:8265 --working-dir . -- \
        python jobs/run.py cluster=remote run.name=exp1
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = "data/sample"
# Never worth shipping: environments, caches (the local MoE alone is 0.7-1.4 GB), past runs.
HEAVY = [".git", ".venv", "venv", ".cache", "outputs", "multirun", "__pycache__", "*.egg-info"]
# The job prints this line when it ends (jobs/run.py; jobs/train.py says "training directory").
RUN_DIR_LINE = re.compile(r"^(?:run|training) directory: (\S.*)$", re.MULTILINE)
PIPELINE = "jobs/run.py"
TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED"}


def working_dir_excludes(root: Path, ship_sample: bool = True) -> list[str]:
    """gitwildmatch patterns for runtime_env["excludes"], relative to the working directory.

    Ray applies .gitignore on its own, and no exclude can bring back what it drops; submit()
    turns that off (RAY_RUNTIME_ENV_IGNORE_GITIGNORE=1) and folds .gitignore in here, so the
    sample corpus under the ignored data/ can be re-included by a negation, which must come last.
    """
    gitignore = root / ".gitignore"
    ignored = gitignore.read_text().splitlines() if gitignore.is_file() else []
    patterns = HEAVY + [p.strip() for p in ignored if p.strip() and not p.startswith("#")]
    if ship_sample:
        # "data/*" rather than "data/": a pattern on a directory hides everything under it,
        # and git semantics forbid re-including a file whose parent is excluded.
        patterns = [("/data/*" if p.strip("/") == "data" else p) for p in patterns]
        patterns.append(f"!/{SAMPLE}")
    return list(dict.fromkeys(patterns))


def has_override(overrides: list[str], key: str) -> bool:
    return any(re.match(rf"^[+~]*{re.escape(key)}=", o) for o in overrides)


def job_overrides(overrides: list[str], run_name: str, script: str = PIPELINE) -> list[str]:
    """cluster=remote and a run name, unless given: the run directory is then known up front.

    (jobs/train.py's run.name names the pipeline run to train on: never invented.)
    """
    extra = [] if has_override(overrides, "cluster") else ["cluster=remote"]
    if script == PIPELINE and not has_override(overrides, "run.name"):
        extra.append(f"run.name={run_name}")
    return extra + list(overrides)


def override_value(overrides: list[str], key: str) -> str | None:
    """The last value given for key (Hydra applies overrides in order)."""
    values = [o.split("=", 1)[1] for o in overrides if has_override([o], key)]
    return values[-1] if values else None


def entrypoint(overrides: list[str], python: str = "python", script: str = PIPELINE) -> str:
    return shlex.join([python, script, *overrides])


def runtime_env(
    root: Path,
    ship_sample: bool = True,
    env_vars: dict[str, str] | None = None,
    pip: list[str] | None = None,
) -> dict:
    env = {
        "working_dir": str(root),
        "excludes": working_dir_excludes(root, ship_sample),
        # Unbuffered: the driver's lines reach the streamed logs as they happen.
        "env_vars": {"PYTHONUNBUFFERED": "1", **(env_vars or {})},
    }
    if pip:
        env["pip"] = list(pip)
    return env


def shipped_files(root: Path, excludes: list[str]) -> list[Path]:
    """The files Ray would pack for this working directory (its own traversal and matching)."""
    from ray._private.runtime_env.packaging import _dir_travel, _get_excludes

    files: list[Path] = []
    _dir_travel(
        root,
        [_get_excludes(root, excludes)],
        lambda p: files.append(p.relative_to(root)) if p.is_file() else None,
        include_gitignore=False,
    )
    return sorted(files)


def run_dirs(logs: str) -> list[str]:
    """Run directories the job printed (one per job; several for a --multirun sweep)."""
    return list(dict.fromkeys(m.strip() for m in RUN_DIR_LINE.findall(logs)))


def stream_logs(client, job_id: str, poll_s: float = 1.0, out=sys.stdout) -> tuple[str, str]:
    """Print the job's log as it grows until the job ends; return (final status, whole log).

    Polls get_job_logs instead of the websocket tail: plain HTTP passes any proxy in between.
    """
    printed = ""
    while True:
        status = str(client.get_job_status(job_id).value)
        logs = client.get_job_logs(job_id)
        out.write(logs[len(printed) :] if logs.startswith(printed) else logs)
        out.flush()
        printed = logs
        if status in TERMINAL:
            return status, printed
        time.sleep(poll_s)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="jobs/submit.py",
        description="Run the pipeline as a Ray job on a cluster: ships this directory, runs "
        "`python jobs/run.py cluster=remote OVERRIDES`, streams the logs, reports the run "
        "directory. Exit status: 0 job succeeded, 1 job failed or was stopped, 2 could not submit.",
        epilog="Example: python jobs/submit.py --address http://head:8265 -- run.name=exp1 "
        "model=qwen3_30b_a3b model.num_actors=16 run.output_root=/shared/outputs",
    )
    parser.add_argument(
        "--address",
        default=os.environ.get("RAY_API_SERVER_ADDRESS", "http://127.0.0.1:8265"),
        help="the cluster's dashboard address (default: $RAY_API_SERVER_ADDRESS or %(default)s)",
    )
    parser.add_argument("--working-dir", type=Path, default=ROOT, help="default: this repository")
    parser.add_argument(
        "--no-sample",
        dest="ship_sample",
        action="store_false",
        help=f"do not ship {SAMPLE} (when the corpus is on shared storage)",
    )
    parser.add_argument(
        "--script",
        default=PIPELINE,
        help="the job, relative to the working directory: %(default)s (the pipeline) or "
        "jobs/train.py (continued pretraining on a run's shards)",
    )
    parser.add_argument(
        "--python", default="python", help="the interpreter on the cluster (default: %(default)s)"
    )
    parser.add_argument(
        "--env", action="append", default=[], metavar="KEY=VALUE", help="job environment"
    )
    parser.add_argument(
        "--pip",
        action="append",
        default=[],
        metavar="REQUIREMENT",
        help="install into the job's runtime env, e.g. 'vllm>=0.33' where the image lacks it",
    )
    parser.add_argument("--submission-id", help="default: generated by Ray")
    parser.add_argument("--no-wait", action="store_true", help="submit, print the id, return")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the files to ship, the runtime env and the equivalent `ray job submit`",
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for jobs/run.py")
    return parser.parse_args(argv)


def _env_pairs(pairs: list[str]) -> dict[str, str]:
    bad = [p for p in pairs if "=" not in p]
    if bad:
        raise SystemExit(f"--env: expected KEY=VALUE, got {bad}")
    return dict(p.split("=", 1) for p in pairs)


def _dry_run(args: argparse.Namespace, env: dict, command: str) -> int:
    files = shipped_files(args.working_dir, env["excludes"])
    size = sum((args.working_dir / f).stat().st_size for f in files)
    sample = sum(1 for f in files if f.is_relative_to(SAMPLE))
    print(f"would ship {len(files)} files, {size / 2**20:.1f} MiB ({sample} under {SAMPLE})")
    print(f"runtime env: {json.dumps(env, indent=2)}")
    print("equivalent:\n  RAY_RUNTIME_ENV_IGNORE_GITIGNORE=1 " + shlex.join(
        ["ray", "job", "submit", "--address", args.address, "--runtime-env-json",
         json.dumps(env), "--", *shlex.split(command)]))  # fmt: skip
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.working_dir = args.working_dir.resolve()
    run_name = "submit-" + time.strftime("%Y%m%d-%H%M%S")
    overrides = job_overrides(args.overrides, run_name, args.script)
    command = entrypoint(overrides, args.python, args.script)
    env = runtime_env(args.working_dir, args.ship_sample, _env_pairs(args.env), args.pip)
    if args.dry_run:
        return _dry_run(args, env, command)
    output_root = override_value(overrides, "run.output_root") or "outputs"
    if not output_root.startswith("/"):
        print(
            "note: run.output_root is relative: outputs stay in the job's copy of the working "
            "directory on the head node; give run.output_root=<shared path> to keep them",
            file=sys.stderr,
        )
    # See working_dir_excludes: .gitignore is folded into the excludes instead.
    os.environ["RAY_RUNTIME_ENV_IGNORE_GITIGNORE"] = "1"
    from ray.job_submission import JobSubmissionClient

    try:
        client = JobSubmissionClient(args.address)
        job_id = client.submit_job(
            entrypoint=command,
            runtime_env=env,
            submission_id=args.submission_id,
            metadata={"run.name": override_value(overrides, "run.name") or ""},
        )
    except (ConnectionError, RuntimeError, ValueError) as e:
        print(f"could not submit to {args.address}: {e}", file=sys.stderr)
        return 2
    print(f"submitted {job_id} to {args.address}: {command}", file=sys.stderr)
    if args.no_wait:
        print(job_id)
        return 0
    try:
        status, logs = stream_logs(client, job_id)
    except KeyboardInterrupt:
        print(f"\ndetached; the job goes on. Stop it: ray job stop --address {args.address} "
              f"{job_id}", file=sys.stderr)  # fmt: skip
        return 130
    info = client.get_job_info(job_id)
    print(f"\njob {job_id}: {status} ({info.message})", file=sys.stderr)
    # The job prints its run directory at the end; one that failed earlier may not have.
    expected = f"{output_root}/{override_value(overrides, 'run.name')}"
    if not output_root.startswith("/"):
        expected += " (in the job's working directory)"
    for run_dir in run_dirs(logs) or [expected]:
        print(f"run directory (on the cluster): {run_dir}", file=sys.stderr)
    return 0 if status == "SUCCEEDED" else 1


if __name__ == "__main__":
    sys.exit(main())
