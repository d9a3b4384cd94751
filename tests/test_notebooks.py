"""The notebooks run headless, top to bottom, on a small run of every stage, and are stored
without outputs (git diffs stay readable; the outputs belong to whoever runs them)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pyarrow.parquet as pq
import pytest
from conftest import ROOT, local_model_config, make_config, write_jsonl
from rewrite_rows import MODEL_HASH, run_with_rewrites

from pipeline import runner
from pipeline.config import SourceConfig

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
NEWS = ROOT / "data" / "sample" / "news" / "lee_background.parquet"
STAGES = ("ingest", "dedup", "quality", "rewrite", "fidelity", "tokenize")


def test_there_are_notebooks_and_they_are_stored_without_outputs():
    assert len(NOTEBOOKS) >= 4
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, path.name


@pytest.fixture(scope="module")
def small_run(tmp_path_factory, ray_local):
    """Every stage on 12 real news articles (one stored twice), then a short training run."""
    if not NEWS.exists():
        pytest.skip("sample corpus not built (make data)")
    rows = pq.read_table(NEWS).to_pylist()[:12]
    records = [{"id": r["id"], "text": r["text"]} for r in rows] + [
        {"id": "copy", "text": rows[0]["text"]}
    ]
    root = tmp_path_factory.mktemp("nb")
    corpus = write_jsonl(root / "news.jsonl", records)
    config = make_config({"news": SourceConfig(paths=[str(corpus)])}, stages=STAGES)
    config.model = local_model_config()
    config.rewrite.styles = ["summary", "wikipedia"]
    config.rewrite.max_docs_per_source = 3
    config.rewrite.max_chunks_per_doc = 1
    config.rewrite.sampling.max_tokens = 96
    config.rewrite.model_cache = str(ROOT / ".cache" / "models")
    config.rewrite.cache_dir = str(root / "cache")
    config.quality.c4.min_sentences = None  # keep the short news items: more rows to show
    run_dir = root / "outputs" / "nb"
    runner.run_pipeline(config, run_dir)
    train_tiny(root / "outputs", "nb")
    return run_dir


def train_tiny(output_root: Path, name: str) -> None:
    """jobs/train.py's tiny preset (a random small Mixtral), a few steps, into <run>/train."""
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "jobs" / "train.py"),
            "train=tiny",
            f"run.output_root={output_root}",
            f"run.name={name}",
            f"train.output_dir={output_root / name / 'train'}",
            "train.max_steps=6",
            "train.eval_every=3",
            "train.scaling.num_workers=0",
        ],
        check=True,
        cwd=ROOT,
        capture_output=True,
        timeout=600,
    )


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_on_a_small_run(path, small_run):
    nb = run_notebook(path, small_run)
    assert not cell_errors(nb), cell_errors(nb)
    figures = [
        o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})
    ]
    assert figures, f"{path.name} drew no plot"


def run_notebook(path: Path, run_dir: Path):
    """Every cell, top to bottom. A cell's error stays in its outputs (allow_errors) instead of
    stopping the run, so the tests below check for it and name the cell and the error."""
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    os.environ["PIPELINE_RUN_DIR"] = str(run_dir)
    NotebookClient(
        nb,
        timeout=300,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(path.parent)}},
    ).execute()
    return nb


def cell_errors(nb) -> list[str]:
    """'cell <id>: <error>: <message>' for each error a cell raised."""
    return [
        f"cell {c.get('id')}: {o.ename}: {o.evalue}"
        for c in nb.cells
        for o in c.get("outputs", [])
        if o.output_type == "error"
    ]


def cell_text(nb, cell_id: str) -> str:
    """Everything a cell printed or displayed; a notebook error anywhere fails the caller."""
    assert not cell_errors(nb), cell_errors(nb)
    outputs = next(c for c in nb.cells if c.get("id") == cell_id).outputs
    return "".join(
        o.get("text", "") + str(o.get("data", {}).get("text/plain", "")) for o in outputs
    )


def test_notebook_04_traces_a_token_back_to_its_source_prompt_and_model(tmp_path, ray_local):
    """The lineage section on a run whose shards hold rewrites (hand-made rows, no model)."""
    run_dir = run_with_rewrites(tmp_path)
    nb = run_notebook(ROOT / "notebooks" / "04_tokens_and_training.ipynb", run_dir)
    shown = cell_text(nb, "lineage")
    assert "rewrites" in shown and "news/n" in shown and MODEL_HASH in shown
    assert "from config.yaml: rewrite.prompts." in shown and "hash matches: True" in shown
