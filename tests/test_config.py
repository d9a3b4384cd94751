"""Every config composes and types; a wrong value stops the job with a message naming the key."""

from __future__ import annotations

import json

import pytest
from conftest import ROOT, compose_config, typed_config, write_jsonl
from omegaconf import OmegaConf
from run_job import run_job, run_job_in_process

from pipeline.config import Config, ConfigError, to_config, validate
from pipeline.runner import STAGES

CONF = ROOT / "conf"
GROUP_OPTIONS = sorted(
    (group.name, option.stem)
    for group in CONF.iterdir()
    if group.is_dir()
    for option in group.glob("*.yaml")
)


def test_every_group_has_options():
    groups = {g for g, _ in GROUP_OPTIONS}
    assert {"corpus", "dedup", "model", "cluster", "experiment"} <= groups


@pytest.mark.parametrize(("group", "option"), GROUP_OPTIONS)
def test_every_option_composes_into_the_typed_config(group, option):
    cfg = compose_config(f"{group}={option}")
    missing = OmegaConf.missing_keys(cfg)
    if missing:  # a template that asks the user for a value: everything else still types
        assert all(k.endswith(".paths") for k in missing), missing
        return
    config = to_config(cfg)
    assert isinstance(config, Config)


def test_default_config_validates_against_the_sample_corpus():
    if not (ROOT / "data" / "sample" / "manifest.json").exists():
        pytest.skip("sample corpus not built (make data)")
    config = typed_config()
    validate(config, tuple(STAGES))
    assert set(config.corpus.sources) == {"news", "wiki", "literature"}


def test_overrides_reach_the_typed_config():
    config = typed_config("corpus.max_doc_bytes=1234", "experiment=tiny")
    assert config.corpus.max_doc_bytes == 1234
    assert config.run.name == "tiny" and config.corpus.batch_rows == 256


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("corpus.max_doc_bytes", 0, "must be positive"),
        ("run.name", "../escape", "not a plain name"),
        ("run.stages", ["ingest", "nope"], "unknown stage"),
    ],
)
def test_validate_names_the_key(field, value, problem):
    config = typed_config()
    OmegaConf.update(node := OmegaConf.structured(config), field, value, merge=False)
    with pytest.raises(ConfigError, match=rf"(?m)^{field}: .*{problem}"):
        validate(to_config(node), tuple(STAGES))


# In process (tests/run_job.py): the same entry point and error printing as the command
# line, without seconds of imports per case; the first case also runs as a command below.
@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["corpus.max_doc_byts=5"], "max_doc_byts"),  # unknown key
        (["corpus.max_doc_bytes=lots"], "corpus.max_doc_bytes"),  # wrong type
        (["cluster.num_cpus=-1"], "cluster.num_cpus: must be positive"),
        (["corpus=jsonl"], "corpus.sources.main.paths"),  # mandatory value not given
        (["corpus=jsonl", "corpus.sources.main.paths=[/no/such/dir/*.jsonl]"], "no file matches"),
        (["rewrite.styles=[qa,poem]"], "rewrite.styles: unknown style 'poem'"),
        (["rewrite.prompts.qa.version=0"], "rewrite.prompts.qa.version: must be >= 1"),
        (["rewrite.max_attempts=0"], "rewrite.max_attempts: must be >= 1"),
    ],
)
def test_wrong_config_gives_a_message_not_a_traceback(tmp_path, overrides, expected):
    result = run_job_in_process(*overrides, f"run.output_root={tmp_path}", "run.name=bad")
    assert result.returncode != 0
    assert expected in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "bad" / "ingest").exists()


@pytest.mark.cli
def test_wrong_config_on_the_command_line_gives_a_message_not_a_traceback(tmp_path):
    result = run_job("corpus.max_doc_byts=5", f"run.output_root={tmp_path}", "run.name=bad")
    assert result.returncode != 0
    assert "max_doc_byts" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "bad" / "ingest").exists()


def test_help_lists_the_config_groups():
    result = run_job_in_process("--help")
    assert result.returncode == 0
    for group in ("corpus", "cluster", "experiment"):
        assert group in result.stdout


# Full tier: two jobs, each with its own Ray (~20 s); the CI tier runs jobs/run.py end to end in
# test_driver_faults.py, and a run directory per job is the runner's (test_runner.py).
@pytest.mark.slow
@pytest.mark.cli
@pytest.mark.ray  # each job starts a local Ray
def test_multirun_gives_each_job_its_own_run_directory(tmp_path):
    data = write_jsonl(
        tmp_path / "in" / "docs.jsonl", [{"id": i, "text": f"doc {i}"} for i in range(20)]
    )
    result = run_job(
        "--multirun",
        "corpus=jsonl",
        f"corpus.sources.main.paths=[{data}]",
        "corpus.batch_rows=4,64",
        f"run.output_root={tmp_path / 'out'}",
        "run.name=sweep",
        "run.stages=[ingest]",
        "cluster.include_dashboard=false",
        "cluster.num_cpus=2",
        "run.progress=false",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    for job in ("0", "1"):
        summary = json.loads((tmp_path / "out" / "sweep" / job / "summary.json").read_text())
        assert summary["stages"][0]["rows_out"] == 20
