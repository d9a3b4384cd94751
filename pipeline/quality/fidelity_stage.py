"""The fidelity stage on Ray Data: score rewrites against their sources, judge a sample,
drop near-duplicate rewrites, cap per source document and per style.

1. score   map_batches: every fidelity score as a column, the first failing rule as reason
2. judge   optional (`fidelity.judge.enabled`): an actor pool with the rewriter's vLLM engine
           judges a deterministic sample of the rows still kept (pipeline/quality/judge.py)
3. dedup   MinHash-LSH over each kept rewrite and its source (pipeline/quality/
           rewrite_dedup.py): features per batch, a groupby per coarse bucket group verifies
           pairs on exact shingle sets; nothing is gathered on the driver
4. decide  a cogroup per source document marks duplicates and applies max_per_source_doc
5. cap     max_per_style: per-block rank tops to the driver (cap x styles x blocks numbers),
           then a map_batches marks the rest
Outputs: fidelity/data (kept rewrites + score columns), quarantine/fidelity (the dropped
ones, same columns, with reason), fidelity/work (intermediate tables).

    python jobs/run.py 'run.stages=[ingest,dedup,rewrite,fidelity]'
"""

from __future__ import annotations

import shutil
from pathlib import Path

import ray

from pipeline import schema as S
from pipeline.models.build import resolve_model_path
from pipeline.plumbing.resources import engine_actor_args, shuffle_partitions
from pipeline.quality.histograms import score_stats
from pipeline.quality.judge import JudgeActor
from pipeline.quality.rewrite_dedup import (
    FEATURES_SCHEMA,
    PAIRS_SCHEMA,
    RANK,
    REWRITE_SHINGLES,
    SOURCE_DOC,
    SOURCE_SHINGLES,
    apply_style_cap,
    dedup_features,
    mark_doc_group,
    resolve_bands,
    style_cutoffs,
    style_tops,
    verify_bucket_group,
)
from pipeline.ray_ops import (
    cogroup,
    count_non_null,
    count_rows,
    read_parts,
    sum_column,
    write_parts,
)
from pipeline.similarity.buckets import BAND_KEYS, COARSE, coarse_groups, explode
from pipeline.stage import REWRITES, RunContext, Stage
from pipeline.stats import StageStats, StepTimer
from pipeline.text_fidelity.scores import SCORED_SCHEMA, fidelity_rules, score_rewrites

HISTOGRAM_COLUMNS = [
    S.F_LENGTH_RATIO, S.F_COPIED_NGRAM_RATIO, S.F_NOVEL_NUMBERS, S.F_NOVEL_ENTITY_RATIO,
    S.F_DUP_5GRAM_CHAR_FRAC, S.F_COMPRESSION_RATIO, S.JUDGE_SCORE,
]  # fmt: skip


class FidelityStage(Stage):
    name = "fidelity"
    produces = REWRITES

    def settings(self):
        cfg = self.config.fidelity
        # The judge's verdicts depend on the model; without a judge the model is irrelevant.
        return {"fidelity": cfg, "model": self.config.model if cfg.judge.enabled else None}

    def run(self, ctx: RunContext) -> StageStats:
        cfg = self.config.fidelity
        source_dir = ctx.output_of(REWRITES)
        work = ctx.stage_dir(self.name) / "work"
        shutil.rmtree(work, ignore_errors=True)
        parts = shuffle_partitions(self.config)
        steps = StepTimer(self.name)
        extra: dict = {}

        with steps("score"):
            scored = read_parts(source_dir, S.REWRITES_SCHEMA).map_batches(
                score_rewrites,
                batch_size=cfg.batch_rows,
                batch_format="pyarrow",
                fn_kwargs={"cfg": cfg},
            )
            if cfg.judge.enabled:
                scored = self._judge(scored)
            write_parts(scored, work / "scored")
        current = read_parts(work / "scored", SCORED_SCHEMA)
        if cfg.judge.enabled:
            # A verdict without a score is an unparseable answer: kept, not judged.
            extra["judge_verdicts"] = count_non_null(work / "scored", S.JUDGE_REASON)
            extra["judge_scores"] = count_non_null(work / "scored", S.JUDGE_SCORE)

        has_rows = count_rows(work / "scored") > 0  # an empty shuffle has no columns
        if has_rows and (cfg.dedup.enabled or cfg.max_per_source_doc is not None):
            with steps("dedup"):
                if cfg.dedup.enabled:
                    pairs = self._pairs(current, work)
                    extra["duplicate_pairs"] = count_rows(work / "pairs")
                else:
                    pairs = ray.data.from_arrow(PAIRS_SCHEMA.empty_table())
                decided = cogroup(
                    {
                        "rows": (current, S.DOC_ID, SCORED_SCHEMA),
                        "pairs": (pairs, "loser_doc", PAIRS_SCHEMA),
                    },
                    _decide_doc,
                    parts,
                    fn_kwargs={"max_per_doc": cfg.max_per_source_doc, "seed": cfg.dedup.seed},
                )
                write_parts(decided, work / "decided")
            current = read_parts(work / "decided", SCORED_SCHEMA)

        if has_rows and cfg.max_per_style is not None:
            with steps("style cap"):
                current = _style_cap(current, cfg.max_per_style, cfg.dedup.seed)

        sink = self.sink(ctx, S.FIDELITY_SCHEMA, count_by=S.STYLE)
        with steps("write"):
            current.write_datasink(sink)
        scores = score_stats(
            self.written_parts(ctx), HISTOGRAM_COLUMNS, S.FIDELITY_FAILED, cfg.histogram_bins
        )
        extra.update(
            kept_by_style=sink.result.rows_out_by,
            rule_fails=scores["rule_fails"],
            rule_columns={r.name: r.column for r in fidelity_rules(cfg)},
            score_histograms=scores["histograms"],
            step_seconds=steps.seconds,
        )
        return self.stats(
            sink.result,
            rows_in=count_rows(source_dir),
            bytes_in=sum_column(source_dir, S.N_BYTES),
            extra=extra,
        )

    def _judge(self, scored: ray.data.Dataset) -> ray.data.Dataset:
        model = self.config.model
        model_cache = Path(self.config.rewrite.model_cache).resolve()
        resolve_model_path(model.path, model_cache, model.num_experts, model.top_k)
        return scored.map_batches(
            JudgeActor,
            fn_constructor_kwargs={"config": self.config, "model_cache": str(model_cache)},
            batch_size=self.config.fidelity.judge.batch_rows,
            batch_format="pyarrow",
            **engine_actor_args(model),
        )

    def _pairs(self, scored: ray.data.Dataset, work: Path):
        cfg = self.config.fidelity.dedup
        bands, _ = resolve_bands(cfg)
        write_parts(
            scored.map_batches(dedup_features, batch_format="pyarrow", fn_kwargs={"cfg": cfg}),
            work / "features",
        )
        # Two keys (rewrite, source) per band for every kept rewrite.
        n_features = count_rows(work / "features")
        if n_features < 2:
            return ray.data.from_arrow(PAIRS_SCHEMA.empty_table())
        n_groups = coarse_groups(n_features * bands * 2)
        keep = [SOURCE_DOC, S.STYLE, RANK, REWRITE_SHINGLES, SOURCE_SHINGLES]
        pairs = (
            read_parts(work / "features", FEATURES_SCHEMA)
            .map_batches(
                explode,
                batch_format="pyarrow",
                fn_kwargs={"keys": BAND_KEYS, "keep": keep, "n_groups": n_groups},
            )
            .groupby(COARSE, num_partitions=shuffle_partitions(self.config))
            .map_groups(
                _verify_group,
                batch_format="pyarrow",
                fn_kwargs={"threshold": cfg.threshold, "max_pairs": cfg.max_bucket_pairs},
            )
        )
        write_parts(pairs, work / "pairs")
        return read_parts(work / "pairs", PAIRS_SCHEMA)


def _verify_group(group, threshold: float, max_pairs: int):
    return verify_bucket_group(group, threshold, max_pairs)


def _decide_doc(parts: dict, max_per_doc: int | None, seed: int):
    if parts["rows"].num_rows == 0:  # pairs whose loser's document has no rows here
        return SCORED_SCHEMA.empty_table()
    return mark_doc_group(parts["rows"], parts["pairs"], max_per_doc, seed)


def _style_cap(current: ray.data.Dataset, cap: int, seed: int) -> ray.data.Dataset:
    tops = current.map_batches(
        style_tops, batch_format="pyarrow", fn_kwargs={"cap": cap, "seed": seed}
    )
    cutoffs = style_cutoffs(list(tops.iter_rows()), cap)
    return current.map_batches(
        apply_style_cap,
        batch_format="pyarrow",
        fn_kwargs={"cutoffs": cutoffs, "cap": cap, "seed": seed},
    )
