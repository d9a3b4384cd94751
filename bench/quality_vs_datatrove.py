"""The quality stage against DataTrove's same four filters, on the same documents in one run.

    python bench/quality_vs_datatrove.py                 # ~64 MB of real text (~15 min)
    python bench/quality_vs_datatrove.py --quick         # ~6 MB: a smoke run (~3 min)
    python bench/quality_vs_datatrove.py --mb 64 --repeats 3 --json out.json

DataTrove is no project dependency: the bench makes its own venv (--venv, by default
.cache/bench/datatrove-venv: datatrove==0.10.1 and spaCy, whose blank English tokenizer its
filters split words with; no model download) and runs DataTrove's side there
(bench/quality_datatrove.py).

Corpus: the bundled sample (news, Wikipedia, Gutenberg plays and prose) re-mixed, seeded: each
document is a sample document whose units (sentences of a news story, paragraphs otherwise; a
10-50% window of a long work) are each swapped, with probability 0.2, for a unit of another
document of that source; 12% get one defect that a rule exists for (bullet or ellipsis lines,
hash tags, lorem ipsum, cookie and JavaScript notices, a curly brace, a repeated paragraph, a
list of short lines). JSONL shards, ingested once by the project's ingest stage; both sides
read the same ingested Parquet parts.

Figures (goals from issue 16):
- stage: the project's quality stage (QualityStage.run on a 2-CPU local Ray, warm: after a run
  on 200 documents; language id, histograms and both output tables included) against
  DataTrove's LocalPipelineExecutor with ParquetReader -> GopherRepetitionFilter ->
  GopherQualityFilter -> C4QualityFilter -> FineWebQualityFilter (defaults) -> ParquetWriter,
  one task per part, 2 workers. Passes alternate, medians. docs/s per core = docs / seconds / 2;
  the ratio >= 10x.
- kernel: one core, no Ray or executor: `score_documents` on 64-document batches against the four
  filters' `filter()` on the first --kernel-mb of documents.
- decisions: DataTrove's verdict per filter on each original text (the four run independently,
  since in a chain a dropped document never reaches the next filter and C4 rewrites the text
  FineWeb reads), and per rule (a copy of the filter with every other rule off), against the
  project's failing rules (`quality_failed`, every rule judged, none skipped). Agreement =
  documents with the same keep/drop / documents, per rule, per family and overall where the
  definitions agree (>= 99%).

Where the definitions differ (what each row leaves out):
- language id (`language`, `language_score`): the project's own rules; DataTrove's four filters
  have none. Timed with the project, left out of the agreement.
- C4's thresholds: the project keeps C4's published 3 sentences and 5 words per line (the paper
  and its released code); DataTrove's defaults are 5 and 3. The aligned rows compare against
  DataTrove's C4QualityFilter(min_num_sentences=3, min_words_per_line=5); its defaults are shown
  beside them.
- C4's line filter: DataTrove deletes lines without an end mark, with "javascript" or a policy
  phrase, and keeps the document; the stage edits no text, so it drops a document whose kept
  lines hold < 30% of its characters (`c4_line_filter`) or > 10% of whose lines are JavaScript
  or policy notices (`c4_javascript_lines`, `c4_policy_lines`). Project-only rules, left out.
  For the same reason the project's FineWeb rules read the original text, not C4's edit.
- two rules defined apart on purpose (pipeline/config/quality.py says why at each threshold),
  shown rule by rule and left out of the overall row: Gopher's share of words with a letter
  (`gopher_non_alpha_words`) is over words, where DataTrove divides by every token, punctuation
  included; FineWeb's line end (`fineweb_line_punct`) may be a terminal mark inside closing
  quotes or brackets ('said so."'), where DataTrove wants the mark last.
- words: DataTrove splits with spaCy; the project with a numba kernel that follows spaCy's
  English rules (pipeline/quality/words.py; about 0.05% of tokens differ on the sample:
  emoticons, "'em", apostrophe-less contractions). The n-gram rules hash word sequences, so
  "ab c" and "a bc" differ where DataTrove's "".join makes them equal.
- lines: DataTrove's str.splitlines also breaks at U+2028/U+2029 (ingest leaves no other break).
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # bench.dedup

import argparse
import json
import re
import shutil
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bench.dedup import Table, one_core, read_sample, start_ray, write_json
from pipeline import schema as S
from pipeline.config import ClusterConfig, Config, CorpusConfig, RunConfig, SourceConfig
from pipeline.config.quality import QualityConfig
from pipeline.quality.rules import quality_rules
from pipeline.quality.scoring import score_documents
from pipeline.quality.stage import QualityStage
from pipeline.ray_ops import count_rows, sum_column
from pipeline.stage import DOCS, RunContext

ROOT = Path(__file__).resolve().parents[1]
PEER = ROOT / "bench" / "quality_datatrove.py"
PEER_PACKAGES = ["datatrove==0.10.1", "spacy==3.8.18", "regex", "pyarrow"]
GEN_VERSION = 1  # part of the corpus cache key: bump when the generator changes
PARTS = 8
CORES = 2
SPEED_GOAL = 10.0  # x DataTrove's docs/s per core, stage against stage
AGREE_GOAL = 0.99

# Project rule -> DataTrove's per-rule column (bench/quality_datatrove.py rule_filters).
SAME_RULE = {
    **{r: r for r in ("gopher_too_few_words", "gopher_too_many_words", "gopher_short_words",
                      "gopher_long_words", "gopher_bullet_lines", "gopher_ellipsis_lines",
                      "gopher_stop_words", "gopher_dup_lines",
                      "gopher_dup_paragraphs", "gopher_dup_line_chars",
                      "gopher_dup_paragraph_chars", "fineweb_short_lines",
                      "fineweb_dup_line_chars", "fineweb_list_like")},
    **{f"gopher_top_{n}gram": f"gopher_top_{n}gram" for n in (2, 3, 4)},
    **{f"gopher_dup_{n}gram": f"gopher_dup_{n}gram" for n in range(5, 11)},
    "gopher_hash_symbols": "gopher_symbols",  # one DataTrove threshold for '#' and ellipses
    "gopher_ellipsis_symbols": "gopher_symbols",
    "c4_lorem_ipsum": "c4_lorem_ipsum@paper",
    "c4_curly_brace": "c4_curly_brace@paper",
    "c4_too_few_sentences": "c4_too_few_sentences@paper",
}  # fmt: skip
DEFINED_APART = {  # pipeline/config/quality.py says why, at the threshold
    "gopher_non_alpha_words": "gopher_non_alpha_words",  # a share of words, not of all tokens
    "fineweb_line_punct": "fineweb_line_punct",  # a mark inside closing quotes ends a line
}
FAMILIES = {  # DataTrove filter column -> the project's rules of that filter
    "gopher_quality": ("gopher_too_", "gopher_short_words", "gopher_long_words",
                       "gopher_hash", "gopher_ellipsis_", "gopher_bullet", "gopher_non_alpha",
                       "gopher_stop"),
    "gopher_repetition": ("gopher_dup_", "gopher_top_"),
    "c4@paper": ("c4_lorem_ipsum", "c4_curly_brace", "c4_too_few_sentences"),
    "fineweb": ("fineweb_",),
}  # fmt: skip
PROJECT_ONLY = ("language", "language_score", "c4_line_filter", "c4_javascript_lines",
                "c4_policy_lines")  # fmt: skip


# --- corpus -----------------------------------------------------------------------------------


def _units(source: str, text: str) -> tuple[list[str], str]:
    if source == "news":
        return re.split(r"(?<=[.!?])\s+", text), " "
    return [p for p in text.split("\n\n") if p.strip()], "\n\n"


def _defects(rng: np.random.Generator) -> list:
    def bullets(t):
        return "\n".join(f"• {s.strip()}" for s in t.split(". ")[:40] if s.strip())

    def ellipsis_lines(t):
        return "\n".join(f"{s.strip()}..." for s in t.split(". ")[:40] if s.strip())

    def hashtags(t):
        words = t.split()
        return " ".join(f"#{w}" for w in words[:40]) + " " + " ".join(words[40:])

    def lorem(t):
        return t + "\nLorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod."

    def notices(t):
        lines = [
            "This site uses cookies to improve your experience.",
            "Please enable JavaScript to view the comments from our readers.",
        ]
        return "\n".join(
            [t, *[lines[int(rng.integers(2))] for _ in range(int(rng.integers(3, 15)))]]
        )

    def curly(t):
        return t + '\nSet the option with {"wrap": true} in the editor\'s settings file.'

    def repeated(t):
        first = t.split("\n\n")[0]
        return "\n\n".join([first] * int(rng.integers(2, 5)) + [t])

    def short_lines(t):
        items = [w.strip(".,;:") for w in t.split()[:60] if len(w) > 3][:25]
        return "Contents:\n" + "\n".join(items) + "\n\n" + t

    return [bullets, ellipsis_lines, hashtags, lorem, notices, curly, repeated, short_lines]


def remixed_corpus(target_bytes: int, seed: int) -> tuple[list[str], list[str]]:
    ids, texts, _ = read_sample()
    by_source: dict[str, list[str]] = {}
    for doc_id, text in zip(ids, texts, strict=True):
        by_source.setdefault(doc_id.split("/")[0], []).append(text)
    pools = {s: [u for t in docs for u in _units(s, t)[0]] for s, docs in by_source.items()}
    sources = sorted(by_source)
    weights = np.array(
        [{"literature": 0.1, "news": 0.35, "wiki": 0.55}.get(s, 0.3) for s in sources]
    )
    rng = np.random.default_rng(seed)
    defects = _defects(rng)
    out_ids, out_texts, total = [], [], 0
    while total < target_bytes:
        source = sources[int(rng.choice(len(sources), p=weights / weights.sum()))]
        base = by_source[source][int(rng.integers(len(by_source[source])))]
        units, joiner = _units(source, base)
        if source == "literature":
            size = max(1, int(len(units) * rng.uniform(0.1, 0.5)))
            start = int(rng.integers(0, len(units) - size + 1))
            units = units[start : start + size]
        pool = pools[source]
        units = [pool[int(rng.integers(len(pool)))] if rng.random() < 0.2 else u for u in units]
        text = joiner.join(units).strip()
        if rng.random() < 0.12:
            text = defects[int(rng.integers(len(defects)))](text)
        out_ids.append(f"remix-{len(out_ids):06d}")
        out_texts.append(text)
        total += len(text.encode())
    return out_ids, out_texts


def write_shards(ids: list[str], texts: list[str], folder: Path) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(PARTS):
        path = folder / f"part-{k}.jsonl"
        with path.open("w") as fh:
            for doc_id, text in zip(ids[k::PARTS], texts[k::PARTS], strict=True):
                fh.write(json.dumps({"id": doc_id, "text": text}) + "\n")
        paths.append(str(path))
    return paths


def config_for(name: str, paths: list[str]) -> Config:
    return Config(
        run=RunConfig(name=name, progress=False, stages=["ingest"], resume=True),
        corpus=CorpusConfig(name=name, sources={"remix": SourceConfig(paths=paths)}),
        cluster=ClusterConfig(num_cpus=CORES, include_dashboard=False),
        quality=QualityConfig(),  # every rule, nothing skipped
    )


def ingested(work: Path, name: str, ids: list[str], texts: list[str]) -> tuple[Config, Path]:
    """The corpus through the project's ingest stage, once (the runner resumes it)."""
    from pipeline.runner import run_pipeline

    config = config_for(name, write_shards(ids, texts, work / name / "jsonl"))
    run_dir = work / name / "run"
    run_pipeline(config, run_dir)
    return config, run_dir


# --- the two sides ------------------------------------------------------------------------------


def peer_python(venv: Path) -> Path:
    python = venv / "bin" / "python"
    probe = [str(python), "-c", "import datatrove, spacy, regex, pyarrow"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    print(f"installing {' '.join(PEER_PACKAGES)} into {venv} ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *PEER_PACKAGES], check=True)
    return python


def run_peer(python: Path, mode: str, work: Path, *args: str, one_cpu: bool = False) -> dict:
    out = work / f"peer-{mode}.json"
    command = [str(python), str(PEER), mode, "--json", str(out), *args]

    def pin() -> None:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

    preexec = pin if one_cpu else None
    with (work / f"peer-{mode}.log").open("w") as log:  # DataTrove logs every task's stats
        subprocess.run(command, check=True, cwd=ROOT, preexec_fn=preexec, stdout=log, stderr=log)
    return json.loads(out.read_text())


def peer_decisions(python: Path, work: Path, parts: Path) -> pa.Table:
    """DataTrove's per-rule verdicts, one process per core (untimed: only the decisions)."""
    procs, outs = [], []
    for k in range(CORES):
        outs.append(work / f"peer-rules-{k}.parquet")
        command = [str(python), str(PEER), "decide", "--input", str(parts), "--out", str(outs[-1]),
                   "--json", str(work / f"peer-decide-{k}.json"), "--shard", str(k),
                   "--shards", str(CORES)]  # fmt: skip
        log = (work / f"peer-decide-{k}.log").open("w")
        procs.append((subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=log), log))
    for proc, log in procs:
        if proc.wait():
            raise RuntimeError(f"DataTrove decide failed: see {log.name}")
        log.close()
    return pa.concat_tables([pq.read_table(o) for o in outs])


def ours_pass(config: Config, source_run: Path, run_dir: Path) -> float:
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    (run_dir / "ingest").symlink_to(source_run / "ingest")
    ctx = RunContext(run_dir, config, input_stage="ingest", upstream=(("ingest", DOCS),))
    started = time.perf_counter()
    QualityStage(config).run(ctx)
    return time.perf_counter() - started


def our_failures(run_dir: Path) -> dict[str, list[str]]:
    parts = [
        p for d in ("quality/data", "quarantine/quality") for p in (run_dir / d).glob("*.parquet")
    ]
    table = pq.read_table(parts, columns=[S.DOC_ID, S.QUALITY_FAILED])
    return dict(zip(table[S.DOC_ID].to_pylist(), table[S.QUALITY_FAILED].to_pylist(), strict=True))


def kernel_ours(ingest_data: Path, limit_bytes: int) -> tuple[float, int, int]:
    table = pq.read_table(
        sorted(ingest_data.glob("*.parquet")), columns=[S.DOC_ID, S.SOURCE, S.TEXT]
    )
    sizes = np.cumsum([len(t.encode()) for t in table[S.TEXT].to_pylist()])
    table = table.slice(0, int(np.searchsorted(sizes, limit_bytes)) + 1)
    cfg = QualityConfig()
    score_documents(table.slice(0, 4), cfg)  # kernels loaded
    with one_core():
        started = time.perf_counter()
        for batch in table.to_batches(max_chunksize=cfg.batch_rows):
            score_documents(pa.Table.from_batches([batch]), cfg)
        seconds = time.perf_counter() - started
    return seconds, table.num_rows, int(sizes[table.num_rows - 1])


# --- comparison ---------------------------------------------------------------------------------


def agreement(ours: np.ndarray, theirs: np.ndarray) -> dict[str, Any]:
    return {
        "agree": float(np.mean(ours == theirs)),
        "ours": int(ours.sum()),
        "theirs": int(theirs.sum()),
        "only_ours": int((ours & ~theirs).sum()),
        "only_theirs": int((~ours & theirs).sum()),
    }


def compare(failed: dict[str, list[str]], peer: pa.Table) -> dict[str, Any]:
    doc_ids = peer["doc_id"].to_pylist()
    ours_sets = [set(failed[d]) for d in doc_ids]
    theirs = {c: np.array([v is not None for v in peer[c].to_pylist()]) for c in peer.column_names}
    rule_names = [r.name for r in quality_rules(QualityConfig())]
    mine = {r: np.array([r in s for s in ours_sets]) for r in rule_names}

    def ours_any(names):
        return np.any([mine[r] for r in names], axis=0)

    rules = {}
    for column in dict.fromkeys([*SAME_RULE.values(), *DEFINED_APART.values()]):
        names = [r for r, c in {**SAME_RULE, **DEFINED_APART}.items() if c == column]
        rules[column] = agreement(ours_any(names), theirs[column])
        default = column.replace("@paper", "")
        if default != column:
            rules[column]["vs_defaults"] = agreement(ours_any(names), theirs[default])
    families, aligned = {}, []
    for family, prefixes in FAMILIES.items():
        names = [r for r in SAME_RULE if r.startswith(prefixes)]
        aligned += names
        columns = sorted({SAME_RULE[r] for r in names})
        families[family] = agreement(ours_any(names), np.any([theirs[c] for c in columns], axis=0))
        every = [r for r in rule_names if r.startswith(prefixes)]  # the filter as DataTrove runs it
        families[family]["whole_filter"] = agreement(ours_any(every), theirs[family])
    both = sorted(set(SAME_RULE.values()))
    ours_kept = np.array([not s for s in ours_sets])
    return {
        "docs": len(doc_ids),
        "rules": rules,
        "families": families,
        "overall": agreement(ours_any(aligned), np.any([theirs[c] for c in both], axis=0)),
        "as_configured": agreement(~ours_kept, theirs["chain"]),
        "project_only": {r: int(mine[r].sum()) for r in PROJECT_ONLY if r in mine},
    }


# --- main -----------------------------------------------------------------------------------


def bench_stage(table: Table, args, python: Path, config: Config, run_dir: Path) -> dict:
    parts = run_dir / "ingest" / "data"
    n_docs = count_rows(parts)
    n_bytes = sum_column(parts, S.N_BYTES)
    ours_s, theirs_s, loads = [], [], []
    peer_args = ["--input", str(parts), "--work", str(args.work / "peer-stage")]
    for k in range(args.repeats):
        loads.append(os.getloadavg()[0])
        ours_s.append(ours_pass(config, run_dir, args.work / "ours"))
        peer = run_peer(python, "time", args.work, *peer_args, "--workers", str(CORES))
        theirs_s.append(peer["seconds"])
        print(f"pass {k}: ours {ours_s[-1]:.1f} s, DataTrove {theirs_s[-1]:.1f} s", flush=True)
    loads.append(os.getloadavg()[0])
    ours_t, theirs_t = statistics.median(ours_s), statistics.median(theirs_s)
    ratio = theirs_t / ours_t
    mb_core = n_bytes / 1e6 / ours_t / CORES
    section = f"stage, {n_docs:,} docs, {n_bytes / 1e6:.0f} MB, {CORES} cores"
    table.add(section, "ours: docs/s per core", f"{n_docs / ours_t / CORES:.1f} ({ours_t:.1f} s)")
    theirs = f"{n_docs / theirs_t / CORES:.2f} ({theirs_t:.1f} s)"
    table.add(section, "DataTrove: docs/s per core", theirs)
    # The goal is at corpus size: at --quick's 6 MB the stage's ~2 s of Ray executions dominate.
    full = n_bytes >= 50e6
    goal = f">= {SPEED_GOAL:.0f}x" if full else ""
    met = ratio >= SPEED_GOAL if full else None
    table.add(section, "ratio (docs/s per core)", f"{ratio:.1f}x", goal, met)
    table.add(
        section, "ours: MB/s per core", f"{mb_core:.2f} ({1e6 / mb_core / 3600:.0f} core-h/TB)"
    )
    table.add(section, "load (1 min) before each pass, after", " ".join(f"{x:.2f}" for x in loads))
    return {"docs": n_docs, "bytes": n_bytes, "ours_s": ours_s, "theirs_s": theirs_s,
            "ratio": ratio, "loads": loads, "mb_s_per_core": mb_core}  # fmt: skip


def bench_kernel(table: Table, args, python: Path, parts: Path) -> dict:
    load = os.getloadavg()[0]
    k_ours, k_docs, k_bytes = kernel_ours(parts, int(args.kernel_mb * 1e6))
    subset = args.work / "kernel-subset"
    shutil.rmtree(subset, ignore_errors=True)
    subset.mkdir()
    docs = pq.read_table(sorted(parts.glob("*.parquet")), columns=[S.DOC_ID, S.TEXT])
    pq.write_table(docs.slice(0, k_docs), subset / "part-0.parquet")
    k_theirs = run_peer(python, "kernel", args.work, "--input", str(subset), one_cpu=True)
    section = f"kernel, one core, {k_docs:,} docs, {k_bytes / 1e6:.0f} MB"
    table.add(section, "ours: docs/s", f"{k_docs / k_ours:.1f} ({k_ours:.1f} s)")
    table.add(section, "DataTrove: docs/s", f"{k_docs / k_theirs['seconds']:.2f}")
    table.add(section, "ratio", f"{k_theirs['seconds'] / k_ours:.1f}x (load {load:.2f})")
    return {"docs": k_docs, "bytes": k_bytes, "ours_s": k_ours, "theirs_s": k_theirs["seconds"]}


def bench_decisions(table: Table, args, python: Path, parts: Path) -> dict:
    result = compare(our_failures(args.work / "ours"), peer_decisions(python, args.work, parts))
    section = f"decisions, {result['docs']:,} docs"
    overall = result["overall"]
    table.add(section, "overall, where definitions agree", _fmt(overall), f">= {AGREE_GOAL}",
              overall["agree"] >= AGREE_GOAL)  # fmt: skip
    for family, row in result["families"].items():
        table.add(section, f"{family}", _fmt(row))
        table.add(section, f"{family}, whole filter", _fmt(row["whole_filter"]))
    for rule, row in result["rules"].items():
        if row["ours"] or row["theirs"]:
            table.add(section, f"rule {rule}", _fmt(row))
            if "vs_defaults" in row:
                table.add(section, f"rule {rule}, DataTrove defaults", _fmt(row["vs_defaults"]))
    table.add(section, "as configured: all rules vs the chain", _fmt(result["as_configured"]))
    only = ", ".join(f"{k} {v}" for k, v in result["project_only"].items())
    table.add(section, "project-only rules (documents failing)", only)
    return result


def main(argv: list[str] | None = None) -> Table:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=float, default=64.0)
    parser.add_argument("--kernel-mb", type=float, default=8.0)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--quick", action="store_true", help="6 MB, kernels on 2 MB, one pass")
    parser.add_argument("--work", type=Path, default=ROOT / ".cache" / "bench" / "quality")
    parser.add_argument("--venv", type=Path, default=ROOT / ".cache" / "bench" / "datatrove-venv")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if args.quick:
        args.mb, args.kernel_mb, args.repeats = 6.0, 2.0, 1
    args.work = args.work.resolve()
    args.work.mkdir(parents=True, exist_ok=True)
    python = peer_python(args.venv)
    table = Table()
    ids, texts = remixed_corpus(int(args.mb * 1e6), args.seed)
    start_ray()
    config, run_dir = ingested(
        args.work, f"remix-{args.mb:g}mb-s{args.seed}-v{GEN_VERSION}", ids, texts
    )
    warm_config, warm_run = ingested(
        args.work, f"warm-s{args.seed}-v{GEN_VERSION}", ids[:200], texts[:200]
    )
    ours_pass(warm_config, warm_run, args.work / "warm-quality")  # workers started, kernels loaded
    parts = run_dir / "ingest" / "data"
    data = {
        "stage": bench_stage(table, args, python, config, run_dir),
        "kernel": bench_kernel(table, args, python, parts),
        "decisions": bench_decisions(table, args, python, parts),
    }
    print(table.render())
    if args.json:
        write_json(args.json, {**data, "goals": table.goals()})
    return table


def _fmt(row: dict[str, Any]) -> str:
    return (f"{row['agree']:.4f} (drops: ours {row['ours']}, DataTrove {row['theirs']}; "
            f"only ours {row['only_ours']}, only DataTrove {row['only_theirs']})")  # fmt: skip


if __name__ == "__main__":
    main()
