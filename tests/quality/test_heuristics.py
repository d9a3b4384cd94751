"""Each document rule on real sample documents, dropped and kept, with the default thresholds.

Where the sample has no document a rule drops (hash tags, bullets, lorem ipsum, cookie
notices), the dropped example is a real sample text with that defect added.
"""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf
from quality_fixtures import ROOT, recorded_pairs, sample_text

from pipeline import schema as S
from pipeline.config.quality import QualityConfig
from pipeline.quality.rules import quality_rules
from pipeline.quality.scoring import decide, document_scores

CFG = QualityConfig()
RULES = quality_rules(CFG)
NEWS = "news/lee_background-0051"  # a 200-word ABC news story: passes every rule
ARTICLE = "wiki/674"  # Anatomy, a long Wikipedia article: passes every rule


def verdict(text: str, cfg: QualityConfig = CFG, skip: tuple[str, ...] = ()) -> dict:
    scores = document_scores(text, cfg)
    return {**scores, **decide(scores, quality_rules(cfg), list(skip))}


@pytest.mark.parametrize("doc_id", [NEWS, ARTICLE, "news/lee_background-0152", "wiki/600"])
def test_ordinary_news_and_articles_pass_every_rule(doc_id):
    v = verdict(sample_text(doc_id))
    assert v[S.QUALITY_FAILED] == [] and v[S.DROP_REASON] is None
    assert v[S.LANGUAGE] == "en" and v[S.LANGUAGE_SCORE] > 0.99


# (doc id, the rule that names the reason, the score it read) for real sample documents.
DROPPED = [
    ("news/lee_background-0207", "gopher_too_few_words", 46),  # 46 words < 50 [Gopher]
    ("wiki/696", "gopher_top_4gram", None),  # "Aa (river ...)" list: repeated n-grams
    ("wiki/586", "c4_curly_brace", 2),  # ASCII: a C snippet "{ a[i] = '\n'; }"
    ("news/lee-0000", "c4_too_few_sentences", 2),  # a two-sentence news item [C4: 3]
    ("wiki/632", "c4_line_filter", None),  # Aberdeen disambiguation: 6% prose lines
    ("wiki/734", "fineweb_line_punct", None),  # Actinopterygii: a list-heavy article
    ("wiki/728", "language", "pcm"),  # a bare list of anthropologists' names
]


@pytest.mark.parametrize("doc_id, rule, score", DROPPED, ids=[d[1] for d in DROPPED])
def test_real_documents_dropped_with_their_rule(doc_id, rule, score):
    v = verdict(sample_text(doc_id))
    assert v[S.DROP_REASON] == rule
    column = next(r.column for r in RULES if r.name == rule)
    assert v[S.DROP_DETAIL].startswith(column)
    if score is not None:
        assert v[column] == score


def test_disambiguation_pages_fail_several_line_rules_and_all_are_recorded():
    v = verdict(sample_text("wiki/630"))  # "Ada may refer to:" and a list
    assert {"c4_too_few_sentences", "c4_line_filter", "fineweb_line_punct"} <= set(
        v[S.QUALITY_FAILED]
    )
    assert v[S.DROP_REASON] == v[S.QUALITY_FAILED][0]


def test_verse_fails_line_rules_that_the_literature_source_skips():
    play = sample_text("literature/hamlet_gut.txt")  # modern spelling: speaker-name lines
    v = verdict(play)
    assert {"c4_line_filter", "fineweb_dup_line_chars"} <= set(v[S.QUALITY_FAILED])
    skip = OmegaConf.load(ROOT / "conf" / "quality" / "default.yaml").skip_rules.literature
    kept = verdict(play, skip=tuple(skip))
    assert kept[S.DROP_REASON] is None and kept[S.QUALITY_FAILED] == []
    assert kept[S.Q_C4_KEPT_CHAR_FRAC] < 0.3  # still scored, only not applied


def test_milton_prose_hard_wrapped_passes_gopher_but_not_fineweb_line_punct():
    v = verdict(sample_text("literature/areopagitica.txt"))
    assert v[S.Q_LINE_PUNCT_FRAC] < 0.12  # lines end where the wrap fell, not in a stop
    assert v[S.Q_STOP_WORDS] == 8 and 3 < v[S.Q_MEAN_WORD_LENGTH] < 10
    assert not [r for r in v[S.QUALITY_FAILED] if r.startswith("gopher")]


def test_repetition_rules_on_the_models_real_repetition_loop():
    loop = recorded_pairs()[2]["text"]  # "Ex. Exe. Exe. Exe. ..." until max_tokens
    v = verdict(loop)
    assert {"gopher_top_2gram", "gopher_dup_5gram", "gopher_dup_10gram"} <= set(v[S.QUALITY_FAILED])
    assert v[S.Q_DUP_NGRAM[10]] > 0.5 and v[S.Q_TOP_NGRAM[2]] > 0.2


def test_duplicated_lines_and_paragraphs():
    story = sample_text(NEWS)
    doubled = "\n\n".join([story, story, story, "A closing line of its own."])
    v = verdict(doubled)
    assert v[S.Q_DUP_PARA_FRAC] == 0.5 and v[S.Q_DUP_LINE_FRAC] == 0.5
    assert v[S.DROP_REASON] == "gopher_dup_lines"
    assert {"gopher_dup_paragraphs", "gopher_dup_line_chars", "gopher_dup_paragraph_chars"} <= (
        set(v[S.QUALITY_FAILED])
    )


@pytest.mark.parametrize(
    "defect, rule",
    [
        (lambda t: " ".join(f"#{w}" for w in t.split()[:30]) + " " + t, "gopher_hash_symbols"),
        (
            lambda t: " ".join(w + "..." * (i % 5 == 4) for i, w in enumerate(t.split())),
            "gopher_ellipsis_symbols",
        ),
        (lambda t: "\n".join(f"• {s}." for s in t.split(". ")), "gopher_bullet_lines"),
        (lambda t: "\n".join(f"{s}..." for s in t.split(". ")), "gopher_ellipsis_lines"),
        (lambda t: t + " " + " ".join(str(i) for i in range(400)), "gopher_non_alpha_words"),
        (
            lambda t: t + "\nLorem ipsum dolor sit amet, consectetur adipiscing elit.",
            "c4_lorem_ipsum",
        ),
        (
            lambda t: "\n".join(
                [
                    t,
                    *["This site uses cookies to improve your experience."] * 9,
                    *["Please enable JavaScript to view the comments."] * 9,
                ]
            ),
            "c4_javascript_lines",
        ),
    ],
    ids=lambda x: x if isinstance(x, str) else "",
)
def test_real_text_with_a_defect_added_is_dropped_by_that_rule(defect, rule):
    original = sample_text(ARTICLE).split("\n\n")[0]  # the first paragraph of Anatomy
    assert verdict(original)[S.QUALITY_FAILED] == []
    v = verdict(defect(original))
    assert rule in v[S.QUALITY_FAILED], v[S.QUALITY_FAILED]


def test_policy_lines_and_stop_words_and_word_length():
    story = sample_text(NEWS)
    lines = [story] + ["Read our privacy policy and terms of use before you comment."] * 12
    assert "c4_policy_lines" in verdict("\n".join(lines))[S.QUALITY_FAILED]
    names = " ".join(w for w in story.split() if w[:1].isupper()) * 3  # no stop word at all
    assert "gopher_stop_words" in verdict(names)[S.QUALITY_FAILED]
    long_words = " ".join(["internationalisation-of-telecommunications"] * 60)
    assert "gopher_long_words" in verdict(long_words)[S.QUALITY_FAILED]


def test_a_null_threshold_switches_one_rule_off_and_enabled_false_a_family():
    cfg = QualityConfig()
    cfg.c4.min_sentences = None
    v = verdict(sample_text("news/lee-0000"), cfg)
    assert v[S.DROP_REASON] is None and v[S.Q_C4_SENTENCES] == 2  # still scored
    cfg.c4.enabled = False
    v = verdict(sample_text("wiki/586"), cfg)
    assert v[S.DROP_REASON] is None and S.Q_C4_CURLY_BRACES not in v


def test_language_rule_on_a_french_paragraph():
    french = (
        "Andorre, officiellement la principauté d'Andorre, est un petit pays d'Europe du Sud "
        "situé dans les Pyrénées, entre l'Espagne et la France. Sa capitale est Andorre-la-"
        "Vieille, la capitale la plus haute d'Europe, et sa langue officielle est le catalan."
    )
    v = verdict(french)
    assert v[S.LANGUAGE] == "fr" and v[S.DROP_REASON] == "language"
    cfg = QualityConfig()
    cfg.language.accepted = ["en", "fr"]
    assert "language" not in verdict(french, cfg)[S.QUALITY_FAILED]
