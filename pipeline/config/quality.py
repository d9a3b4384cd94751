"""The `quality` group (conf/quality/): the quality stage's rules over raw documents.

Every rule is one threshold; `null` switches that rule off (its score is still computed and
kept as a column), and `enabled: false` skips a whole family. Sources of the numbers:
[Gopher] Rae et al. 2021, "Scaling Language Models", appendix A (table A1);
[C4] Raffel et al. 2020, "Exploring the Limits of Transfer Learning", section 2.2;
[FineWeb] Penedo et al. 2024, "The FineWeb Datasets" (its custom filters, datatrove defaults);
[DataTrove] datatrove 0.10.1's implementation of the rule, where the paper leaves it open;
[measured] on data/sample or the recorded real-model rewrites (see the comment at the value).

    from pipeline.config.quality import GopherQualityRules
    GopherQualityRules(min_words=-1)   # ConfigError("min_words: must be >= 0, got -1")
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.config.ranges import Checked, at_least, thresholds

GOPHER_STOP_WORDS = ["the", "be", "to", "of", "and", "that", "have", "with"]  # [Gopher]


@dataclass
class GopherQualityRules(Checked):
    """Gopher's quality rules [Gopher]: length, word shape, symbols, lines, stop words."""

    enabled: bool = True
    min_words: int | None = 50  # [Gopher]
    max_words: int | None = 100_000  # [Gopher]
    min_mean_word_length: float | None = 3.0  # [Gopher]
    max_mean_word_length: float | None = 10.0  # [Gopher]
    max_hash_ratio: float | None = 0.1  # '#' per token, punctuation included [DataTrove]
    max_ellipsis_ratio: float | None = 0.1  # '...' or '…' per token [DataTrove]
    max_bullet_lines: float | None = 0.9  # share of lines starting with "•" or "-" [DataTrove]
    max_ellipsis_lines: float | None = 0.3  # share of lines ending with an ellipsis [Gopher]
    # Share of words with a letter [Gopher]. Of words, as the paper says: DataTrove divides by
    # every token, so its punctuation tokens count as words without a letter and it drops 10%
    # of real Wikipedia articles (bench/quality_vs_datatrove.py). The one rule defined apart.
    min_alpha_words: float | None = 0.8
    # Distinct stop words present ("at least two of the following English words") [Gopher],
    # matched as written ("The" is not "the"), as DataTrove does.
    min_stop_words: int | None = 2
    stop_words: list[str] = field(default_factory=lambda: list(GOPHER_STOP_WORDS))  # [Gopher]

    def problems(self) -> list[str]:
        problems = thresholds(self)
        low, high = self.min_words, self.max_words
        if low is not None and high is not None and low > high:
            problems.append(f"min_words: {low} > max_words {high}")
        return problems


@dataclass
class GopherRepetitionRules(Checked):
    """Table A1 of [Gopher]: each a maximum share of lines, paragraphs or characters."""

    enabled: bool = True
    max_dup_line_frac: float | None = 0.30
    max_dup_para_frac: float | None = 0.30
    max_dup_line_char_frac: float | None = 0.20
    max_dup_para_char_frac: float | None = 0.20
    max_top_2gram_char_frac: float | None = 0.20
    max_top_3gram_char_frac: float | None = 0.18
    max_top_4gram_char_frac: float | None = 0.16
    max_dup_5gram_char_frac: float | None = 0.15
    max_dup_6gram_char_frac: float | None = 0.14
    max_dup_7gram_char_frac: float | None = 0.13
    max_dup_8gram_char_frac: float | None = 0.12
    max_dup_9gram_char_frac: float | None = 0.11
    max_dup_10gram_char_frac: float | None = 0.10

    def problems(self) -> list[str]:
        return thresholds(self)


@dataclass
class C4Rules(Checked):
    """C4 keeps only lines ending in . ? ! " or ' (not '...') with >= 5 words and no
    'javascript' or policy phrase, then drops pages with < 3 sentences left [C4] (the paper's
    numbers and its released code, tensorflow_datasets c4_utils; datatrove's defaults swap
    them, and add the "'" end mark, which this follows). Sentences are counted as spaCy's
    sentencizer splits the kept lines [DataTrove]. This stage does not edit texts: it scores
    what C4's line filter would keep and drops the document instead."""

    enabled: bool = True
    min_words_per_line: int = 5  # [C4]
    min_sentences: int | None = 3  # sentences in the lines C4 keeps [C4]
    # Share of characters in lines C4 would keep. Not a C4 rule (C4 edits the page instead).
    # [measured] on the sample's wiki articles: disambiguation pages and name lists keep
    # <= 0.14, real articles with long filmographies or reference lists 0.43-0.50, the
    # median 0.93; 0.3 sits in the gap. Hard-wrapped books and verse keep 0.06-0.30: the rule
    # is skipped for them (quality.skip_rules).
    min_kept_char_frac: float | None = 0.3
    drop_lorem_ipsum: bool = True  # [C4]
    drop_curly_brace: bool = True  # any '{' in a prose line [C4]: code and templates
    # C4 deletes such lines; a page where they are > 10% of the lines is boilerplate.
    # [measured]: no sample document has any.
    max_javascript_lines: float | None = 0.1
    max_policy_lines: float | None = 0.1  # "privacy policy", "uses cookies", ...: as above

    def problems(self) -> list[str]:
        return thresholds(self)


@dataclass
class FineWebRules(Checked):
    """FineWeb's line rules [FineWeb]; lines are the non-blank ones, unstripped [DataTrove]."""

    enabled: bool = True
    # Lines ending a sentence: in . ! ? or another script's full stop (DataTrove's
    # TERMINAL_PUNCTUATION) [DataTrove], or in one followed by closing quotes or brackets
    # ('he said so."'), where DataTrove wants the mark last: the sample's news stories are one
    # line each, and 41 of 350 end in a quotation [measured].
    min_line_punct_frac: float | None = 0.12
    max_short_line_frac: float | None = 0.67  # lines of <= 30 characters [FineWeb]
    short_line_chars: int = 30  # [FineWeb]
    max_dup_line_char_frac: float | None = 0.01  # characters in repeated lines [FineWeb]
    max_newline_word_ratio: float | None = 0.3  # newlines per token (lists) [FineWeb]

    def problems(self) -> list[str]:
        return thresholds(self)


@dataclass
class LanguageRules(Checked):
    """Language id with py3langid (langid.py's naive Bayes model, shipped in the wheel; 97
    languages): fastText's lid.176 is a download, and nothing here may download a model."""

    enabled: bool = True
    accepted: list[str] = field(default_factory=lambda: ["en"])  # ISO 639-1 codes
    # Probability of the top language (langid, normalised). 0.65 is FineWeb's cut for
    # English with fastText [FineWeb]. [measured]: every sample document, First Folio
    # spelling included, scores >= 0.998 English, except one list of names (0.39, 'pcm').
    min_score: float = 0.65
    # Characters classified, from the start: enough for a confident call, bounded cost.
    max_chars: int = 20_000

    def problems(self) -> list[str]:
        problems = thresholds(self) + at_least(self, 1, "max_chars")
        if self.enabled and not self.accepted:
            problems.append("accepted: no language accepted (disable it instead)")
        return problems


@dataclass
class ClassifierRules(Checked):
    """A fastText model trained by jobs/train_quality_classifier.py; off when path is null."""

    path: str | None = None  # a fastText .bin; null: no classifier
    positive_label: str = "hq"  # the label whose probability is the score
    min_score: float | None = 0.5  # probability of positive_label; null: score only
    max_chars: int = 20_000  # characters scored, from the start

    def problems(self) -> list[str]:
        return thresholds(self)


@dataclass
class QualityConfig(Checked):
    gopher: GopherQualityRules = field(default_factory=GopherQualityRules)
    repetition: GopherRepetitionRules = field(default_factory=GopherRepetitionRules)
    c4: C4Rules = field(default_factory=C4Rules)
    fineweb: FineWebRules = field(default_factory=FineWebRules)
    language: LanguageRules = field(default_factory=LanguageRules)
    classifier: ClassifierRules = field(default_factory=ClassifierRules)
    # Rules not applied to a source (scores are still recorded): {source: [rule or prefix*]},
    # e.g. {"literature": ["c4_*", "fineweb_line_punct"]} for verse (conf/quality/default.yaml).
    skip_rules: dict[str, list[str]] = field(default_factory=dict)
    # Documents per map_batches call, as corpus and dedup batch: 64 cost 10% more per byte
    # on 3.5 KB documents (bench/scale.py's corpus; the per-call work is fixed).
    batch_rows: int = 1024
    # Score histograms in the stats: bins between each score's observed min and max.
    histogram_bins: int = 10

    def problems(self) -> list[str]:
        return at_least(self, 1, "batch_rows", "histogram_bins")
