"""The `dedup` group (conf/dedup/): exact and near-duplicate removal, and partial duplicates."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from pipeline.config.ranges import Checked, at_least, within


class ShingleKind(StrEnum):
    word = "word"
    char = "char"


class Punctuation(StrEnum):
    strip = "strip"
    keep = "keep"


class ContainmentAction(StrEnum):
    flag = "flag"
    remove = "remove"


class Verify(StrEnum):
    jaccard = "jaccard"
    estimate = "estimate"


class Survivor(StrEnum):
    longest = "longest"
    smallest_id = "smallest_id"


@dataclass
class ShingleConfig(Checked):
    # "word": word n-grams (robust to reflowed lines); "char": character n-grams (catches
    # edits inside words and scripts without spaces). bench/dedup.py: char 5-grams squeeze
    # the similarity range (30% word edits still score 0.53) and unrelated documents collide
    # (125k-661k candidates vs ~1.2k at t<=0.6); word 3- and 5-grams separate edit rates
    # equally well and 5-grams give fewer candidates, so word 5-grams are the default.
    kind: ShingleKind = ShingleKind.word
    n: int = 5
    lowercase: bool = True
    # "strip": punctuation separates words and is dropped; "keep": each mark is a token.
    punctuation: Punctuation = Punctuation.strip

    def problems(self) -> list[str]:
        return at_least(self, 1, "n")


@dataclass
class ContainmentConfig(Checked):
    # Partial duplicates: a document mostly contained in a longer one (an excerpt, a truncated
    # copy, an article quoted whole in a longer page) has low Jaccard with its container, so
    # the whole-document LSH misses it. Candidates are documents that share anchors: the
    # shingles whose hash is 0 modulo `anchor_every` (chosen by content, not position, so an
    # excerpt keeps its source's anchors); a pair is a partial duplicate when >= `threshold`
    # of the smaller document's shingles are in the larger one (exact sets).
    enabled: bool = True
    # Set from word 5-gram arithmetic, not tuned on a corpus: an excerpt with a share e of its
    # words changed keeps ~(1 - e)^5 of its 5-grams (0.77 at 5%, 0.59 at 10%), while
    # unrelated documents of one topic share a few percent. bench/dedup_scale.py reports it
    # on seeded corpora (light-edit excerpts against same-topic documents): recall 1.00 up
    # to 5%, 0.99 at 10%, precision 1.000 (BENCHMARKS.md).
    threshold: float = 0.5
    # One shingle in `anchor_every` is an anchor: fewer keys for a larger value, and fewer
    # shared anchors for a short excerpt. A pair must share as many anchors as a pair at
    # `threshold` does but for a 1e-3 tail (the shared count is ~Bin(A, threshold) for a part
    # of A anchors: 12 of 45, 26 of 80 at 0.5), and at least `min_shared_anchors` (or all
    # the smaller document has).
    anchor_every: int = 8
    min_shared_anchors: int = 2
    action: ContainmentAction = ContainmentAction.flag  # flag: keep, mark partial_dup_of

    def problems(self) -> list[str]:
        return within(self, 0, 1, "threshold", low_open=True, high_open=True) + at_least(
            self, 1, "anchor_every", "min_shared_anchors"
        )


@dataclass
class DedupConfig(Checked):
    exact: bool = True
    near: bool = True
    shingle: ShingleConfig = field(default_factory=ShingleConfig)
    num_perm: int = 128
    seed: int = 1
    # Target Jaccard similarity of word 5-gram sets. Measured (bench/dedup.py): copies with
    # <=5% word edits score >= 0.61, copies with 10% edits <= 0.52, so 0.6 sits in the gap.
    threshold: float = 0.6
    # Bands and rows follow from the threshold by datasketch's optimisation of weighted
    # false-positive and false-negative areas. Balanced weights (0.5/0.5) make a pair right
    # at the threshold a candidate only ~40% of the time (recall 0.91); weighting false
    # negatives 0.95 gives 24 bands x 4 rows: recall 0.999, precision 1.000 after exact
    # verification, for 42% more candidate pairs to verify.
    fp_weight: float = 0.05
    fn_weight: float = 0.95
    bands: int | None = None
    rows: int | None = None
    # "jaccard": verify candidate pairs on the exact shingle sets; "estimate": trust the
    # signature estimate (cheaper, noisier).
    verify: Verify = Verify.jaccard
    # Buckets larger than this are verified against their first member only (star), which
    # bounds pair work on pathological buckets (boilerplate) at a small recall cost.
    max_bucket_pairs: int = 64
    # Which member of a cluster survives: "longest" (most bytes, then smallest id) or
    # "smallest_id".
    keep: Survivor = Survivor.longest
    containment: ContainmentConfig = field(default_factory=ContainmentConfig)
    max_cc_iterations: int = 64
    # Connected components in one union-find task up to this many verified edges (real
    # corpora have far fewer edges than documents); above it, distributed star rounds (0:
    # always).
    local_components_max_edges: int = 20_000_000
    # Documents per map task (a unit of input) and per kernel call within it.
    unit_rows: int = 20_000
    batch_rows: int = 1024

    def problems(self) -> list[str]:
        problems = within(self, 0, 1, "threshold", low_open=True, high_open=True)
        problems += at_least(self, 1, "num_perm", "max_bucket_pairs", "unit_rows", "batch_rows")
        problems += at_least(self, 0, "local_components_max_edges")
        if (self.bands is None) != (self.rows is None):
            problems.append("bands, rows: give both or neither")
        elif (
            self.bands is not None
            and self.rows is not None
            and self.bands * self.rows > self.num_perm
        ):
            problems.append(f"bands * rows: {self.bands * self.rows} > num_perm {self.num_perm}")
        return problems
