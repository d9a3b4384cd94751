"""The `fidelity` group (conf/fidelity/): the fidelity stage's checks of rewrites against
their sources, the judge, the rewrite dedup and the caps (sources of the numbers: see
pipeline/config/quality.py).

    from pipeline.config.fidelity import FidelityConfig, JudgeConfig
    FidelityConfig(judge=JudgeConfig(fraction=0))   # ConfigError("fraction: must be in (0, 1] ...")
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.config.ranges import Checked, at_least, thresholds, within


@dataclass
class JudgeConfig(Checked):
    """An LLM judge through the rewriter's vLLM engine, JSON-schema constrained output."""

    enabled: bool = False  # off: the 135M default model is no judge (see judge.py)
    fraction: float = 0.1  # rewrites judged: a deterministic sample by hash of rewrite_id
    seed: int = 0  # of the sample
    min_score: int | None = 3  # 1-5; a judged rewrite below is dropped (null: score only)
    max_source_chars: int = 3000  # source and rewrite are cut to fit the model's context
    max_tokens: int = 96  # the verdict is short JSON; a cut one is kept, unjudged
    batch_rows: int = 32  # rewrites per actor call

    def problems(self) -> list[str]:
        problems = within(self, 0, 1, "fraction", low_open=True)
        problems += at_least(self, 1, "batch_rows", "max_tokens")
        if self.min_score is not None and not 1 <= self.min_score <= 5:
            problems.append(f"min_score: must be in 1..5, got {self.min_score}")
        return problems


@dataclass
class RewriteDedupConfig(Checked):
    """MinHash-LSH over rewrites and their sources (pipeline/similarity's functions)."""

    enabled: bool = True  # off: no rewrite dedup (the caps still apply)
    # Word 5-gram Jaccard, as the document dedup (pipeline/config/dedup.py DedupConfig.threshold).
    threshold: float = 0.6
    shingle_n: int = 5  # word n-grams, as dedup.shingle.n
    num_perm: int = 128  # as dedup.num_perm; bands and rows from the threshold, as dedup's
    seed: int = 1  # of the MinHash permutations and of the caps' hash order
    max_bucket_pairs: int = 64  # larger buckets verify a star (dedup.max_bucket_pairs)

    def problems(self) -> list[str]:
        problems = within(self, 0, 1, "threshold", low_open=True, high_open=True)
        return problems + at_least(self, 1, "shingle_n", "num_perm")


@dataclass
class FidelityConfig(Checked):
    # Characters of the rewrite / of the source it rewrote. [measured] on the recorded model
    # outputs and hand-written faithful rewrites of their sources (tests/quality/*.json):
    # faithful 0.73-1.03; the model's failures 0.13 (a one-line comment) to 2.7 (verse).
    # The evaluation set's faithful paraphrases (calibration split): 0.76-1.39, inside.
    min_length_ratio: float | None = 0.3
    max_length_ratio: float | None = 2.5
    # {style: [min, max]} replaces the bounds above: styles that shorten or expand by design.
    length_ratio_by_style: dict[str, list[float]] = field(
        default_factory=lambda: {
            "summary": [0.1, 1.2],
            "knowledge_list": [0.2, 2.0],
            "qa": [0.3, 3.0],
            "skeptic": [0.3, 3.0],
        }
    )
    copy_ngram: int = 3  # word n-grams of the two rules below: trigrams
    # Share of the rewrite's distinct word n-grams found in the source (pipeline/similarity
    # shingles, containment). Set on the fidelity evaluation set's calibration split
    # (tests/quality/fidelity_eval.jsonl, human Bible paraphrases; bench/fidelity_gate.py)
    # as the value that keeps the most faithful rewrites plus drops the most unfaithful ones
    # (faithful: 2% under 0.064, free translations the lowest; unfaithful, other verses of the
    # same chapter: 95% under 0.055): 0.06 drops 0.99 of the unfaithful and, alone, 0.02 of
    # the faithful (0.1: 0.065). Lower than the 0.1 fitted to the
    # recorded model outputs before: those that stop share 0.00-0.04 (0.18 for one that copies
    # a source sentence inside meta-commentary, caught as boilerplate), so all still fail.
    min_copied_ngram_ratio: float | None = 0.06
    # Above 0.9 the "rewrite" is the source with light edits (2% of words changed keeps
    # ~94% of the trigrams): a copy, not a rewrite.
    max_copied_ngram_ratio: float | None = 0.9
    # Numbers in the rewrite absent from the source: digits and numbers in words, cardinal or
    # ordinal (a lone "one", mostly a pronoun, left out): invented facts ("December 12th,
    # 2023", "since 2014" in the recorded outputs). Zero tolerance: on the evaluation set's
    # calibration split it drops 0.98 of the planted number changes and 0.89 of the planted
    # dates, and costs 0.05 of the faithful paraphrases (translations that count differently).
    max_novel_numbers: int | None = 0
    # Capitalised non-initial words absent from the source, as a share of those in the
    # rewrite. Off: on the evaluation set's calibration split (bench/fidelity_gate.py, jointly
    # with the two swap rules below) every value costs faithful paraphrases that name_swap
    # does not, for few planted changes: free translations add names and capitalised terms
    # ("Jesus" for "he", "the Good News"; 0.6 of them have one). With name_swap at 0, 0.5
    # keeps 0.81 of the faithful (under the 0.82 asked) and 0.3 keeps 0.75. Alone, before
    # name_swap, 0.3 was the pick (faithful kept 0.82, planted names dropped 0.38). For
    # same-language rewrites 0.3 is the setting to try: the recorded model's invented names
    # ("Salam Advayeb", added, not swapped) score 0.4-1.0.
    max_novel_entity_ratio: float | None = None
    min_entities_for_ratio: int = 3  # fewer entities than this: the ratio is not judged
    # Entity swaps: novel entities paired with source entities the rewrite lacks, spelling
    # variants matched (pipeline/quality/fidelity.py entity_swaps); the score is always kept.
    # Off: name_swap finds swaps by position, including those whose old name is still
    # mentioned; on the calibration split, 0 on top of it costs 0.085 of the faithful
    # paraphrases (translations rename: "James" for "Jacob", "Master" for "Lord") for 0.056
    # more planted changes.
    max_entity_swaps: int | None = None
    # Name swaps: novel names standing where the source has another name, by aligning the two
    # texts (pipeline/quality/fidelity.py name_swaps). Zero tolerance, the calibration split's
    # pick (bench/fidelity_gate.py): faithful kept 0.82, unfaithful dropped 0.98, planted
    # changes dropped 0.83 (names 0.78; the entity ratio at 0.3 alone: 0.38). Its cost is
    # translations that rename ("Jacob" for "James", "Isaiah" for "Esaias", "Greece" for
    # "Achaia"): 0.09 of the faithful paraphrases, half of their drops.
    max_name_swaps: int | None = 0
    # Repetition loops: Gopher's duplicate 5-gram character fraction [Gopher]; zlib's
    # compressed/raw size [measured: the recorded loops 0.14 and 0.28, prose 0.48-0.71].
    max_dup_5gram_char_frac: float | None = 0.15
    min_compression_ratio: float | None = 0.3
    min_compression_chars: int = 200  # shorter texts compress badly anyway: not judged
    # Meta-commentary phrases (pipeline/quality/fidelity.py BOILERPLATE) the source lacks.
    # [measured]: 13 of the 20 recorded outputs have 1-12, the faithful rewrites none.
    max_boilerplate_hits: int | None = 0
    drop_refusals: bool = True  # pipeline/rewrite/postprocess's refusal patterns, per chunk
    drop_truncated: bool = True  # a chunk that hit max_tokens (rewrite.on_truncated=keep)
    judge: JudgeConfig = field(default_factory=JudgeConfig)
    dedup: RewriteDedupConfig = field(default_factory=RewriteDedupConfig)
    # Caps, after dedup: rewrites kept per source document and per style (null: no cap);
    # which ones stay is a deterministic hash order of rewrite_id.
    max_per_source_doc: int | None = None
    max_per_style: int | None = None
    batch_rows: int = 64  # rewrites per map_batches call
    histogram_bins: int = 10  # bins of the score histograms in the stats

    def problems(self) -> list[str]:
        problems = thresholds(self) + at_least(self, 1, "copy_ngram", "batch_rows")
        problems += at_least(self, 1, "max_per_source_doc", "max_per_style", or_null=True)
        for style, bounds in self.length_ratio_by_style.items():
            if len(bounds) != 2 or not 0 <= bounds[0] < bounds[1]:
                problems.append(
                    f"length_ratio_by_style.{style}: want [min, max], 0 <= min < max; got {bounds}"
                )
        low, high = self.min_copied_ngram_ratio, self.max_copied_ngram_ratio
        if low is not None and high is not None and low >= high:
            problems.append(f"min_copied_ngram_ratio: {low} >= max {high}")
        return problems
