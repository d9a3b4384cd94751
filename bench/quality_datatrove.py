"""DataTrove's side of bench/quality_vs_datatrove.py. It runs in the bench's own venv (DataTrove is
no project dependency), imports nothing from the project, and writes JSON or Parquet for the bench.

    PY=.cache/bench/datatrove-venv/bin/python
    $PY bench/quality_datatrove.py time   --input DIR --work DIR --workers 2 --json out.json
    $PY bench/quality_datatrove.py kernel --input DIR --json out.json
    $PY bench/quality_datatrove.py decide --input DIR --out rules.parquet --json out.json \
        --shard 0 --shards 2

- time: DataTrove's own stage: `LocalPipelineExecutor` over the Parquet parts (one task per part,
  `--workers` processes) with ParquetReader -> GopherRepetitionFilter -> GopherQualityFilter ->
  C4QualityFilter -> FineWebQualityFilter (all defaults, English: spaCy's blank "en" tokenizer)
  -> ParquetWriter of the kept documents. A dropped document skips the later filters and C4
  rewrites the text that FineWeb then reads, as in any DataTrove pipeline.
- kernel: the same four filters' `filter()` on in-memory Documents, one process: no reader, no
  writer, no executor.
- decide: per document, each filter's verdict on the original text (the four run independently),
  the chain's verdict, and one column per rule: a copy of the filter with every other rule
  switched off, so each rule is judged by DataTrove's own code and none hides behind an earlier
  one. Word and sentence splitting are memoised per text so the per-rule copies cost one
  tokenisation. C4 is judged with its defaults (5 sentences, 3 words per line) and with C4's
  published numbers (3 and 5), the project's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from functools import lru_cache
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from datatrove.data import Document
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.filters import (
    C4QualityFilter,
    FineWebQualityFilter,
    GopherQualityFilter,
    GopherRepetitionFilter,
    c4_filters,
    fineweb_quality_filter,
    gopher_quality_filter,
    gopher_repetition_filter,
)
from datatrove.pipeline.readers import ParquetReader
from datatrove.pipeline.writers import ParquetWriter

NEVER = float("inf")
GOPHER_Q_OFF = dict(
    min_doc_words=None, max_doc_words=None, min_avg_word_length=None, max_avg_word_length=None,
    max_symbol_word_ratio=None, max_bullet_lines_ratio=None, max_ellipsis_lines_ratio=None,
    max_non_alpha_words_ratio=None, min_stop_words=None,
)  # fmt: skip
GOPHER_R_OFF = dict(
    dup_line_frac=None, dup_para_frac=None, dup_line_char_frac=None, dup_para_char_frac=None,
    top_n_grams=(), dup_n_grams=(),
)  # fmt: skip
FINEWEB_OFF = dict(
    line_punct_thr=0.0, short_line_thr=NEVER, char_duplicates_ratio=NEVER, new_line_ratio=NEVER
)
C4_PAPER = dict(min_num_sentences=3, min_words_per_line=5)  # C4's paper and released code


def four_filters() -> list:
    return [
        GopherRepetitionFilter(),
        GopherQualityFilter(),
        C4QualityFilter(),
        FineWebQualityFilter(),
    ]


def rule_filters() -> dict:
    """{rule name: a filter judging that rule alone}; names as bench/quality_vs_datatrove.py's."""
    q, r, f = GOPHER_Q_OFF, GOPHER_R_OFF, FINEWEB_OFF
    rules = {
        "gopher_too_few_words": GopherQualityFilter(**{**q, "min_doc_words": 50}),
        "gopher_too_many_words": GopherQualityFilter(**{**q, "max_doc_words": 100_000}),
        "gopher_short_words": GopherQualityFilter(**{**q, "min_avg_word_length": 3}),
        "gopher_long_words": GopherQualityFilter(**{**q, "max_avg_word_length": 10}),
        "gopher_symbols": GopherQualityFilter(**{**q, "max_symbol_word_ratio": 0.1}),
        "gopher_bullet_lines": GopherQualityFilter(**{**q, "max_bullet_lines_ratio": 0.9}),
        "gopher_ellipsis_lines": GopherQualityFilter(**{**q, "max_ellipsis_lines_ratio": 0.3}),
        "gopher_non_alpha_words": GopherQualityFilter(**{**q, "max_non_alpha_words_ratio": 0.8}),
        "gopher_stop_words": GopherQualityFilter(**{**q, "min_stop_words": 2}),
        "gopher_dup_paragraphs": GopherRepetitionFilter(**{**r, "dup_para_frac": 0.3}),
        "gopher_dup_paragraph_chars": GopherRepetitionFilter(**{**r, "dup_para_char_frac": 0.2}),
        "gopher_dup_lines": GopherRepetitionFilter(**{**r, "dup_line_frac": 0.3}),
        "gopher_dup_line_chars": GopherRepetitionFilter(**{**r, "dup_line_char_frac": 0.2}),
        "fineweb_line_punct": FineWebQualityFilter(**{**f, "line_punct_thr": 0.12}),
        "fineweb_short_lines": FineWebQualityFilter(**{**f, "short_line_thr": 0.67}),
        "fineweb_dup_line_chars": FineWebQualityFilter(**{**f, "char_duplicates_ratio": 0.01}),
        "fineweb_list_like": FineWebQualityFilter(**{**f, "new_line_ratio": 0.3}),
    }
    for n, thr in ((2, 0.2), (3, 0.18), (4, 0.16)):
        rules[f"gopher_top_{n}gram"] = GopherRepetitionFilter(**{**r, "top_n_grams": ((n, thr),)})
    for n, thr in ((5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10)):
        rules[f"gopher_dup_{n}gram"] = GopherRepetitionFilter(**{**r, "dup_n_grams": ((n, thr),)})
    for suffix, c4 in (("", {}), ("@paper", C4_PAPER)):
        only = {
            "c4_lorem_ipsum": dict(filter_curly_bracket=False, min_num_sentences=-1),
            "c4_curly_brace": dict(filter_lorem_ipsum=False, min_num_sentences=-1),
            "c4_too_few_sentences": dict(filter_lorem_ipsum=False, filter_curly_bracket=False),
        }
        for name, kwargs in only.items():
            rules[f"{name}{suffix}"] = C4QualityFilter(**{**c4, **kwargs})
    return rules


def memoise_splitting() -> None:
    """One tokenisation per text for all the per-rule copies (the filters call these by the
    names their modules imported)."""
    words = lru_cache(maxsize=8)(gopher_quality_filter.split_into_words)
    for module in (gopher_quality_filter, gopher_repetition_filter, fineweb_quality_filter):
        module.split_into_words = words
    c4_filters.split_into_sentences = lru_cache(maxsize=1 << 16)(c4_filters.split_into_sentences)


def verdict(f, doc_id: str, text: str) -> str | None:
    """None: kept; else DataTrove's reason (or the error a degenerate text raised)."""
    try:
        out = f.filter(Document(text=text, id=doc_id))  # a fresh Document: C4 edits the text
    except (ZeroDivisionError, ValueError) as e:
        return f"error:{type(e).__name__}"
    return None if out is True else (out[1] if isinstance(out, tuple) else "dropped")


def read_docs(input_dir: Path) -> tuple[list[str], list[str]]:
    table = pq.read_table(sorted(input_dir.glob("*.parquet")), columns=["doc_id", "text"])
    return table["doc_id"].to_pylist(), table["text"].to_pylist()


def run_time(args) -> dict:
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    parts = sorted(Path(args.input).glob("*.parquet"))
    executor = LocalPipelineExecutor(
        pipeline=[
            ParquetReader(
                str(args.input), glob_pattern="*.parquet", text_key="text", id_key="doc_id"
            ),
            *four_filters(),
            ParquetWriter(str(work / "kept")),
        ],
        tasks=len(parts),
        workers=args.workers,
        logging_dir=str(work / "logs"),
        skip_completed=False,
    )
    started = time.perf_counter()
    executor.run()
    seconds = time.perf_counter() - started
    kept = pq.read_table(work / "kept", columns=["id"]).num_rows
    return {"seconds": seconds, "kept": kept, "tasks": len(parts), "workers": args.workers}


def run_kernel(args) -> dict:
    ids, texts = read_docs(Path(args.input))
    filters = four_filters()
    started = time.perf_counter()
    kept = 0
    for doc_id, text in zip(ids, texts, strict=True):
        doc = Document(text=text, id=doc_id)
        kept += all(f.filter(doc) is True for f in filters)  # all() stops at the first drop
    return {"seconds": time.perf_counter() - started, "docs": len(ids), "kept": kept}


def run_decide(args) -> dict:
    memoise_splitting()
    ids, texts = read_docs(Path(args.input))
    ids, texts = ids[args.shard :: args.shards], texts[args.shard :: args.shards]
    names = ("gopher_repetition", "gopher_quality", "c4", "fineweb")
    families = dict(zip(names, four_filters(), strict=True))
    families["c4@paper"] = C4QualityFilter(**C4_PAPER)
    rules = rule_filters()
    columns: dict[str, list] = {name: [] for name in ["chain", *families, *rules]}
    started = time.perf_counter()
    for doc_id, text in zip(ids, texts, strict=True):
        for name, f in {**families, **rules}.items():
            columns[name].append(verdict(f, doc_id, text))
        doc, reason = Document(text=text, id=doc_id), None
        for f in four_filters_cached():
            out = f.filter(doc)
            if out is not True:
                reason = f"{f.name}:{out[1] if isinstance(out, tuple) else ''}"
                break
        columns["chain"].append(reason)
    table = pa.table({"doc_id": ids, **{k: pa.array(v, pa.string()) for k, v in columns.items()}})
    pq.write_table(table, args.out)
    return {"seconds": time.perf_counter() - started, "docs": len(ids)}


@lru_cache(maxsize=1)
def four_filters_cached() -> list:
    return four_filters()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", choices=["time", "kernel", "decide"])
    parser.add_argument("--input", required=True)
    parser.add_argument("--work")
    parser.add_argument("--out")
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--shard", type=int, default=0, help="decide: this process's share")
    parser.add_argument("--shards", type=int, default=1)
    parser.add_argument("--json", required=True)
    args = parser.parse_args()
    result = {"time": run_time, "kernel": run_kernel, "decide": run_decide}[args.mode](args)
    Path(args.json).write_text(json.dumps(result, indent=1))
    print(json.dumps(result), file=sys.stderr)


if __name__ == "__main__":
    main()
