"""Security defaults: remote code off unless a preset says why, no pickle or eval of data,
`_target_` limited to the project's classes, paths confined, Ray on loopback."""

from __future__ import annotations

import ast
import json
import socket
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest
from conftest import ROOT, compose_config, typed_config
from omegaconf import OmegaConf
from run_job import run_job_in_process

from pipeline import ray_session
from pipeline.config import ClusterConfig, Config, ConfigError, ModelConfig, to_config, validate
from pipeline.models.engine import VLLMEngine
from pipeline.security import (
    REFUSED_RUN_DIR,
    PathEscape,
    confined,
    is_plain_name,
    security_problems,
)

CONF = ROOT / "conf"
HOSTILE_NAMES = ["../x", "../../etc/passwd", "/etc/passwd", "a/../../b", "..", ".", "a/b", ""]


# --- trust_remote_code ------------------------------------------------------------------


def test_remote_code_is_off_by_default():
    assert ModelConfig().trust_remote_code is False


# Moonshot's checkpoints ship their tokenizer as repository code (tiktoken-based).
REMOTE_CODE_PRESETS = {"moonlight_16b_a3b", "kimi_linear_48b_a3b"}


@pytest.mark.parametrize("preset", sorted(p.stem for p in (CONF / "model").glob("*.yaml")))
def test_only_moonshot_presets_trust_remote_code_and_say_why(preset):
    model = typed_config(f"model={preset}").model
    assert model.trust_remote_code is (preset in REMOTE_CODE_PRESETS)
    if model.trust_remote_code:
        lines = (CONF / "model" / f"{preset}.yaml").read_text().splitlines()
        at = next(i for i, line in enumerate(lines) if line.startswith("trust_remote_code:"))
        assert lines[at - 1].startswith("#"), "a preset that trusts remote code says why"


def test_remote_code_cannot_be_switched_on_through_engine_arguments():
    config = Config()
    config.model.engine = {"trust_remote_code": True}
    assert security_problems(config) == [
        "model.engine.trust_remote_code: not allowed here; set model.trust_remote_code "
        "(off by default: remote code runs with the job's rights)"
    ]


def test_the_engine_passes_the_switch_to_vllm(monkeypatch, tmp_path):
    seen = {}

    class FakeLLM:
        def __init__(self, **kwargs):
            seen.update(kwargs)
            self.model_config = types.SimpleNamespace(max_model_len=128)

        def get_tokenizer(self):
            return None

    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(LLM=FakeLLM))

    for trust in (False, True):
        VLLMEngine(ModelConfig(path=str(tmp_path), trust_remote_code=trust), tmp_path)
        assert seen["trust_remote_code"] is trust


# --- no pickle, eval or instantiate of anything a config or corpus supplies ---------------

FORBIDDEN_CALLS = {
    "eval", "exec", "compile", "__import__", "importlib.import_module", "pickle.load",
    "pickle.loads", "cloudpickle.load", "cloudpickle.loads", "dill.load", "dill.loads",
    "marshal.load", "marshal.loads", "shelve.open", "yaml.load", "yaml.unsafe_load",
    "yaml.full_load", "pd.read_pickle", "pandas.read_pickle", "instantiate",
    "hydra.utils.instantiate", "hydra.utils.call", "os.system",
}  # fmt: skip
FORBIDDEN_IMPORTS = {"pickle", "cloudpickle", "dill", "marshal", "shelve"}
# Findings accepted with a reason (none today: checkpoints load with weights_only=True).
KNOWN: set[tuple[str, str]] = set()


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def audit(source: str) -> list[str]:
    findings = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
            findings += [f"import {n}" for n in names if n and n.split(".")[0] in FORBIDDEN_IMPORTS]
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        kwargs = {k.arg: k.value for k in node.keywords}
        if name in FORBIDDEN_CALLS:
            findings.append(name)
        elif name.endswith("torch.load"):
            weights_only = kwargs.get("weights_only")
            if not (isinstance(weights_only, ast.Constant) and weights_only.value is True):
                findings.append("torch.load(weights_only=False)")
        elif name.endswith(("np.load", "numpy.load")):
            allow = kwargs.get("allow_pickle")
            if isinstance(allow, ast.Constant) and allow.value is True:
                findings.append("np.load(allow_pickle=True)")
    return findings


def test_the_audit_finds_what_it_looks_for():
    source = textwrap.dedent(
        """
        import pickle, yaml, torch, numpy as np
        eval("1"); pickle.loads(b""); yaml.load(s); torch.load(f); np.load(f, allow_pickle=True)
        torch.load(f, weights_only=True); yaml.safe_load(s); re.compile("x")
        """
    )
    assert audit(source) == [
        "import pickle",
        "eval",
        "pickle.loads",
        "yaml.load",
        "torch.load(weights_only=False)",
        "np.load(allow_pickle=True)",
    ]


def test_no_pickle_eval_or_instantiate_in_the_code():
    findings = {
        (str(path.relative_to(ROOT)), finding)
        for folder in ("pipeline", "jobs")
        for path in sorted((ROOT / folder).rglob("*.py"))
        for finding in audit(path.read_text())
    }
    assert findings - KNOWN == set()


# --- Hydra _target_ -----------------------------------------------------------------------


@pytest.mark.parametrize("target", ["os.system", "subprocess.Popen", "builtins.eval", 42, None])
def test_a_foreign_target_is_a_config_error(target):
    config = Config()
    config.model.engine = {"kv_cache": {"_target_": target, "_args_": ["rm -rf /"]}}
    (problem,) = security_problems(config)
    assert problem.startswith("model.engine.kv_cache._target_: ")
    assert "may only name the project's own classes (pipeline....)" in problem


def test_a_target_inside_a_list_is_found():
    config = Config()
    config.model.env = {}
    config.model.engine = {"hooks": [{"ok": 1}, {"_target_": "os.system"}]}
    assert security_problems(config)[0].startswith("model.engine.hooks[1]._target_:")


def test_the_projects_own_target_is_allowed():
    config = Config()
    config.model.engine = {"x": {"_target_": "pipeline.models.engine.VLLMEngine"}}
    assert security_problems(config) == []


def test_validate_reports_the_target_with_its_key(tmp_path):
    data = tmp_path / "a.jsonl"
    data.write_text('{"text": "x"}\n')
    cfg = compose_config("corpus=jsonl", f"corpus.sources.main.paths=[{data}]")
    OmegaConf.update(cfg, "model.engine", {"_target_": "os.system"}, force_add=True)
    with pytest.raises(ConfigError, match=r"(?m)^model\.engine\._target_: 'os.system'"):
        validate(to_config(cfg))


# --- paths confined to the run directory --------------------------------------------------


@pytest.mark.parametrize("name", [n for n in HOSTILE_NAMES if n != "a/b"] + ["a/.."])
def test_confined_refuses_a_path_that_leaves_or_is_its_root(tmp_path, name):
    with pytest.raises(PathEscape):
        confined(tmp_path / "run" / name, tmp_path / "run")


def test_confined_refuses_a_symlink_out_of_the_root(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "link").symlink_to(tmp_path)
    with pytest.raises(PathEscape):
        confined(tmp_path / "run" / "link" / "x", tmp_path / "run")


@pytest.mark.parametrize("name", ["a", "a/b", "a/../b", "./a", "..a", "a..b"])
def test_confined_accepts_paths_inside(tmp_path, name):
    assert confined(tmp_path / "run" / name, tmp_path / "run") == tmp_path / "run" / name


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_run_and_source_names_must_be_plain(name, tmp_path):
    assert not is_plain_name(name)
    data = tmp_path / "a.jsonl"
    data.write_text('{"text": "x"}\n')
    cfg = compose_config("corpus=jsonl", f"corpus.sources.main.paths=[{data}]")
    config = to_config(cfg)
    config.run.name = name
    config.corpus.sources = {name: config.corpus.sources["main"]}
    with pytest.raises(ConfigError) as error:
        validate(config)
    assert "run.name:" in str(error.value) and f"corpus.sources.{name}:" in str(error.value)


def test_the_run_dir_resolver_maps_a_bad_name_under_the_output_root():
    resolved = OmegaConf.create({"root": "/tmp/out", "d": "${root}/${plain_name:../../outside}"})
    assert resolved.d == f"/tmp/out/{REFUSED_RUN_DIR}"
    assert OmegaConf.create({"d": "${plain_name:exp-1.a_b}"}).d == "exp-1.a_b"


# In process (tests/run_job.py): jobs/run.py's Hydra entry point, run-dir resolver and error
# printing, without seconds of imports; test_config.py runs a refused config as a command.
def test_a_bad_run_name_on_the_command_line_writes_nothing_outside(tmp_path):
    out = tmp_path / "root"
    data = tmp_path / "a.jsonl"
    data.write_text('{"text": "x"}\n')
    result = run_job_in_process(
        "corpus=jsonl", f"corpus.sources.main.paths=[{data}]", f"run.output_root={out}",
        "run.name=../escaped", "run.stages=[ingest]",
    )  # fmt: skip
    assert result.returncode == 2
    assert "run.name: '../escaped' is not a plain name" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "escaped").exists()
    assert [p.name for p in out.iterdir()] == [REFUSED_RUN_DIR]


# --- Ray on loopback ----------------------------------------------------------------------


def test_a_local_head_is_new_and_bound_to_loopback():
    kwargs = ray_session.init_kwargs(ClusterConfig())
    assert kwargs["address"] == "local"  # never joins a Ray found on the machine
    assert kwargs["dashboard_host"] == kwargs["_node_ip_address"] == "127.0.0.1"
    assert kwargs["dashboard_port"] is None  # 8265, or the next free one


def test_a_cluster_config_only_gives_the_address():
    kwargs = ray_session.init_kwargs(ClusterConfig(address="auto"))
    assert kwargs["address"] == "auto"
    assert not {"dashboard_host", "_node_ip_address", "num_cpus"} & set(kwargs)


def test_a_cluster_config_can_choose_another_host():
    kwargs = ray_session.init_kwargs(ClusterConfig(host="10.0.0.5"))
    assert kwargs["dashboard_host"] == kwargs["_node_ip_address"] == "10.0.0.5"


def test_a_local_head_runs_without_ray_metrics_unless_asked():
    env = ray_session.local_head_env(ClusterConfig())
    assert env["RAY_enable_metrics_collection"] == env["RAY_event_stats"] == "0"
    assert env["RAY_AUTH_MODE"] == "disabled"
    assert "RAY_enable_metrics_collection" not in ray_session.local_head_env(
        ClusterConfig(ray_metrics=True)
    )
    assert ray_session.local_head_env(ClusterConfig(address="auto")) == {}  # the cluster's own


def test_the_loopback_switch_is_set_for_the_session_and_restored(monkeypatch):
    from ray._private import ray_constants

    monkeypatch.delenv(ray_session._LOOPBACK_SWITCH, raising=False)
    before = ray_constants.ENABLE_RAY_CLUSTER
    with ray_session.bound_to_host(ClusterConfig()):
        assert ray_session.os.environ[ray_session._LOOPBACK_SWITCH] == "0"
        assert ray_constants.ENABLE_RAY_CLUSTER is False
    assert ray_session._LOOPBACK_SWITCH not in ray_session.os.environ
    assert ray_constants.ENABLE_RAY_CLUSTER is before
    for other in (ClusterConfig(host="0.0.0.0"), ClusterConfig(address="auto")):
        with ray_session.bound_to_host(other):
            assert ray_session._LOOPBACK_SWITCH not in ray_session.os.environ


def test_a_taken_dashboard_port_is_a_config_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=rf"^cluster\.dashboard_port: 127\.0\.0\.1:{port}"):
            ray_session.check_dashboard_port(ClusterConfig(dashboard_port=port))
    ray_session.check_dashboard_port(ClusterConfig(dashboard_port=None))  # Ray picks a free one


LISTENERS = """
import json, psutil, ray
from pipeline.ray_session import ray_session
from pipeline.config import ClusterConfig
with ray_session(ClusterConfig(num_cpus=1), progress=False):
    ray.get(ray.remote(lambda: 1).remote())  # a worker, with its own server
    me = psutil.Process()
    mine = {me.pid} | {p.pid for p in me.children(recursive=True)}
    print(json.dumps(sorted({
        (c.laddr.ip, psutil.Process(c.pid).name()) for c in psutil.net_connections("inet")
        if c.status == psutil.CONN_LISTEN and c.pid in mine})))
    print(json.dumps([" ".join(p.cmdline()) for p in me.children(recursive=True)
        if p.status() != psutil.STATUS_ZOMBIE and "log_monitor" in " ".join(p.cmdline())]))
"""


@pytest.mark.ray
def test_every_server_of_a_local_run_listens_on_loopback_only():
    result = subprocess.run(
        [sys.executable, "-c", LISTENERS], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    listeners, log_monitors = map(json.loads, result.stdout.strip().splitlines()[-2:])
    names = {name for _, name in listeners}
    assert {"gcs_server", "raylet"} <= names  # the head's own servers were seen
    assert all(ip in ("127.0.0.1", "::ffff:127.0.0.1", "::1") for ip, _ in listeners), listeners
    # With cluster.log_to_driver off (the default) nothing reads the log monitor's lines, and
    # the session stops it (ray_session.stop_log_monitor).
    assert log_monitors == []


def test_security_module_is_imported_by_config_loading():
    # The plain_name resolver must exist before Hydra resolves hydra.run.dir in jobs/run.py.
    import pipeline.config  # noqa: F401

    assert OmegaConf.has_resolver("plain_name")
    assert Path(CONF / "config.yaml").read_text().count("${plain_name:${run.name}}") == 2
