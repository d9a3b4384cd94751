"""The fidelity gate on the 20 real outputs of the default model (recorded in a demo run, each
paired with the source chunk it rewrote), on hand-written faithful rewrites of the same
sources, and on copies. Every recorded output is unusable and every one is dropped; the
faithful rewrites pass every rule."""

from __future__ import annotations

import pyarrow as pa
import pytest
from quality_fixtures import faithful_rewrites, recorded_pairs, rewrite_row

from pipeline import schema as S
from pipeline.config.fidelity import FidelityConfig
from pipeline.score_rules import failing_rules
from pipeline.text_fidelity.cleaning import clean_generation
from pipeline.text_fidelity.scores import (
    alias_pairs,
    compression_ratio,
    copied_ngram_ratio,
    entities,
    entity_swaps,
    fidelity_rules,
    fidelity_scores,
    name_swaps,
    novel_terms,
    numbers,
    score_rewrites,
)

CFG = FidelityConfig()
PAIRS = recorded_pairs()
SOURCES = {p["generation"]: p["source"] for p in PAIRS}


def judge(text: str, source: str, style: str, finish: str = "stop", cfg=CFG) -> dict:
    scores = fidelity_scores(text, source, finish_reasons=[finish], chunk_rewrites=[text], cfg=cfg)
    return {**scores, "failed": [r.name for r in failing_rules(scores, fidelity_rules(cfg, style))]}


def recorded(i: int) -> dict:
    """Recorded output i as the rewrite stage stores it (post-processed), judged."""
    p = PAIRS[i]
    cleaned = clean_generation(p["text"], p["finish_reason"]).text
    return judge(cleaned, p["source"], p["style"], p["finish_reason"])


def test_every_recorded_output_of_the_real_model_is_dropped():
    verdicts = [recorded(i) for i in range(len(PAIRS))]
    assert all(v["failed"] for v in verdicts)
    # Even if truncated outputs were let through (rewrite.on_truncated=keep and
    # fidelity.drop_truncated=false), each fails another rule.
    lenient = FidelityConfig(drop_truncated=False)
    for p in PAIRS:
        cleaned = clean_generation(p["text"], p["finish_reason"]).text
        assert judge(cleaned, p["source"], p["style"], p["finish_reason"], lenient)["failed"]


@pytest.mark.parametrize("i", [i for i, p in enumerate(PAIRS) if p["finish_reason"] == "length"])
def test_truncated_outputs_name_truncation_first(i):
    assert recorded(i)["failed"][0] == "truncated"


@pytest.mark.parametrize("i", [2, 6])  # "Ex. Exe. Exe. Exe. ..." until max_tokens
def test_repetition_loops(i):
    v = recorded(i)
    assert {"repetition", "low_compression"} <= set(v["failed"])
    assert v[S.F_COMPRESSION_RATIO] < 0.3 and v[S.F_DUP_5GRAM_CHAR_FRAC] > 0.15


@pytest.mark.parametrize("i, phrase", [
    (11, "the text should"),  # "The text should be reworded with no more than one sentence"
    (16, "original text"),
    (18, "here is what you"),
    (10, "rewritten text"),
    (3, "rewritten version"),
])  # fmt: skip
def test_meta_commentary_is_boilerplate(i, phrase):
    v = recorded(i)
    assert v["failed"][0] == "boilerplate" and phrase in v[S.F_BOILERPLATE]


def test_a_closing_meta_line_is_stripped_and_what_is_left_judged():
    # '"Spectre doth lie."\n\nI made adjustments to the original text ...': post-processing
    # strips the closing line; the one line left is far too short for its source.
    v = recorded(12)
    assert v["failed"][0] == "too_short" and not v[S.F_BOILERPLATE]


def test_invented_numbers_and_names():
    v = recorded(4)  # "... what happened on December 12th, 2023."
    assert {"2023", "12"} <= set(v[S.F_NOVEL_TERMS]) and "novel_numbers" in v["failed"]
    v = recorded(13)  # "the first Test title since 2014", "Bretton Leal"
    assert "2014" in v[S.F_NOVEL_TERMS] and "Bretton" in v[S.F_NOVEL_TERMS]
    v = recorded(9)  # Raduyev becomes "Raduyshev", plus an invented "Salam Advayeb"
    assert {"Raduyshev", "Advayeb"} <= set(v[S.F_NOVEL_TERMS]) and v["failed"] == ["unfaithful"]
    # Names only added are no name swap; the entity ratio, off by default (config.py), drops them.
    assert v[S.F_NAME_SWAPS] == [] and CFG.max_novel_entity_ratio is None
    p = PAIRS[9]
    text = clean_generation(p["text"], p["finish_reason"]).text
    with_ratio = FidelityConfig(max_novel_entity_ratio=0.3)
    assert "novel_entities" in judge(text, p["source"], p["style"], cfg=with_ratio)["failed"]
    v = recorded(15)  # cricket becomes Australia beating Brazil at soccer
    assert "Brazil" in v[S.F_NOVEL_TERMS] and v["failed"][0] == "too_short"


def test_unfaithful_outputs_share_almost_no_trigrams_with_their_source():
    stops = [i for i, p in enumerate(PAIRS) if p["finish_reason"] == "stop"]
    ratios = [recorded(i)[S.F_COPIED_NGRAM_RATIO] for i in stops]
    assert max(ratios) < 0.2 and sorted(ratios)[-2] < CFG.min_copied_ngram_ratio


@pytest.mark.parametrize("rewrite", faithful_rewrites(), ids=lambda r: r["style"])
def test_faithful_rewrites_pass_every_rule(rewrite):
    v = judge(rewrite["text"], SOURCES[rewrite["generation"]], rewrite["style"])
    assert v["failed"] == []
    assert 0.4 < v[S.F_COPIED_NGRAM_RATIO] < 0.8 and v[S.F_NOVEL_NUMBERS] == 0


def test_a_copy_of_the_source_is_not_a_rewrite():
    source = SOURCES[18]  # ASCII, two paragraphs
    assert judge(source, source, "wikipedia")["failed"] == ["copied_source"]
    words = source.split()
    edited = " ".join("really" if i % 50 == 7 else w for i, w in enumerate(words))  # 2% edits
    v = judge(edited, source, "wikipedia")
    assert v["failed"] == ["copied_source"] and v[S.F_COPIED_NGRAM_RATIO] > 0.9


def test_refusals_are_dropped_first():
    v = judge("I'm sorry, but I can't help with rewriting this text.", SOURCES[9], "summary")
    assert v[S.F_REFUSAL] and v["failed"][0] == "refusal"


def test_number_and_entity_extraction():
    assert numbers("1. In 1996, 2,000 people\n2) paid $5.50.") == {"1996", "2000", "5.50"}
    assert entities("In 1996 the warlord met Salman Raduyev in Dagestan. He left.") == [
        "Salman",
        "Raduyev",
        "Dagestan",
    ]
    # Headings (short, no end mark) and sentence openers are not entities.
    assert entities("Key Facts\nThe Principality is small. It has Two Co-Princes.") == [
        "Principality",
        "Two",
        "Co-Princes",
    ]
    new_numbers, found, new = novel_terms(
        "Three of the 200 people met the Co-Princes of Andorra in 1278.",
        "three hundred; 200 people. The Co-Princes of Andorra, formed in A.D. 1278.",
    )
    assert new_numbers == [] and found == 2 and new == []


def test_numbers_in_words_are_numbers():
    # The evaluation set's planted changes are number words ("forty" -> "fifty", "the third
    # day" -> "the fifth day"), and translations write "threescore and ten" for 70.
    assert numbers("three hundred and thirty-seven thousand, five hundred sheep") == {
        "337000",
        "500",
    }
    assert numbers("on the twenty-fourth day, 2,000 men; six hundred threescore and six") == {
        "24",
        "2000",
        "666",
    }
    assert numbers("no one came; One of them left") == set()  # a lone "one": a pronoun
    source = "He stayed forty days there, and three hundred men with him."
    assert novel_terms("He stayed fifty days.", source)[0] == ["50"]
    assert novel_terms("For 40 days, with 300 men; the third day.", source)[0] == []
    # A source's number words count in parts too: a rewrite may split or round them.
    assert novel_terms("Three of them.", source)[0] == []


def test_quoted_sentences_and_function_words_are_not_entities():
    text = "He said, 'Do not go to Jesus’ house.' And His servants left for Rome, O Lord."
    assert entities(text) == ["Jesus", "Rome", "Lord"]


SWAP_SOURCE = "Then Jesus saw Andrew and his brother at the Sea of Galilee, and he called them."


def test_a_name_put_in_place_of_another_is_an_entity_swap():
    swapped = "Then Jesus saw Peter and his brother at the Sea of Galilee, and he called them."
    assert entity_swaps(swapped, SWAP_SOURCE) == ["novel 'Peter' while 'Andrew' is missing"]
    # Only added ("Jesus" for "he"), or only dropped (a summary, a knowledge list): no swap.
    added = "Then Jesus saw Andrew and his brother at the Sea of Galilee; Jesus called them."
    assert entity_swaps(added, SWAP_SOURCE.replace("Then Jesus", "Then he")) == []
    assert entity_swaps("- Jesus called two brothers by the sea.", SWAP_SOURCE) == []
    # A possessive, a plural and a spelling variant are the same name, not a swap.
    assert entity_swaps("It was Jesus' call: at Galilee's Sea, Andrews came.", SWAP_SOURCE) == []
    assert entity_swaps("and Bathsheba said to Timothy", "And Bath-sheba said to Timotheus") == []
    assert entity_swaps("and the Savior of the Gentile", "And the Saviour of the Gentiles") == []


MOSES = "And Moses went up to the mountain, and Moses spoke to the people of Israel."


def test_a_name_standing_where_the_source_has_another_is_a_name_swap():
    # One mention swapped: the old name still appears, and one novel name among three
    # entities stays under any entity ratio; its place gives it away.
    swapped = "Moses went up the mountain, and Mamre spoke to the people of Israel."
    assert name_swaps(swapped, MOSES) == ["'Mamre' where the source has 'Moses'"]
    assert entity_swaps(swapped, MOSES) == []  # "Moses" is not missing
    # A name where the source has a pronoun is no swap ("Jesus" for "he"), nor is an added
    # name, a spelling variant, or a name moved within the rewritten span.
    he = "And he went up to the mountain, and he spoke to the people."
    assert name_swaps("Jesus went up the mountain, and he spoke to the people.", he) == []
    assert name_swaps("Moses went up Mount Sinai, and Moses spoke to Israel.", MOSES) == []
    assert name_swaps("and Bathsheba said to Timothy", "And Bath-sheba said to Timotheus") == []
    assert name_swaps("Then Israel heard Moses speak.", "Then Moses spoke to Israel.") == []


def test_titles_and_common_words_are_not_name_swaps():
    # A word either text writes in lower case is a common noun, capitalised or not.
    source = "and Simon said to the Lord, Teacher, the lord of the house is here."
    assert name_swaps("and Simon said to the Master, Teacher, the master is here.", source) == []
    # A singular word after an article that the rewrite no longer uses is a title rendered
    # another way; a people after an article ("the Egyptians") is still a name.
    messiah = "John said that the Messiah would come after Andrew."
    assert name_swaps("John said that the Christ would come after Andrew.", messiah) == []
    egyptians = "Joseph died, and the Egyptians wept for him seventy days."
    assert name_swaps("Joseph died, and the Tarsus wept for him seventy days.", egyptians) == [
        "'Tarsus' where the source has 'Egyptians'"
    ]
    # A sentence's first word is judged as `entities` judges it: not at all.
    assert name_swaps("Joseph died. Tarsus wept for him.", "Joseph died. Egypt wept for him.") == []


# A free rewrite: clauses moved, so the word alignment leaves the rewrite's mention of the
# man in a long replaced span, and the source's more than 2 words from its slot.
FREE_SOURCE = (
    "After the feast Andrew went down to Capernaum with his mother and his brothers, "
    "and they stayed there for a few days."
)
FREE_REWRITE = (
    "After the feast, with his mother and his brothers, Simon went down to stay at "
    "Capernaum for a few days."
)


def test_a_swapped_name_a_clause_away_is_found_within_reach():
    # No source name faces "Simon" at its slot (2 words either side), nor within 8 words ...
    assert name_swaps(FREE_REWRITE, FREE_SOURCE) == []
    assert name_swaps(FREE_REWRITE, FREE_SOURCE, reach=8) == []
    # ... but "Andrew" is within 12 words of its place in the source, and the rewrite's own
    # 12 words either side lack him.
    assert name_swaps(FREE_REWRITE, FREE_SOURCE, reach=12) == [
        "'Simon' near where the source has 'Andrew'"
    ]
    assert CFG.name_swap_reach == 12
    assert judge(FREE_REWRITE, FREE_SOURCE, "wikipedia")["failed"] == ["name_swap"]


def test_what_reach_does_not_count_as_a_swap():
    # The faithful rewrite: the same name, moved.
    assert name_swaps(FREE_REWRITE.replace("Simon", "Andrew"), FREE_SOURCE, reach=12) == []
    # A name added where the source has none nearby ("Jesus" for "he") ...
    source = "He went down to Capernaum with his mother, and they stayed there for a few days."
    added = "Jesus stayed a few days at Capernaum; his mother came down with him."
    assert name_swaps(added, source, reach=12) == []
    # ... a source name the rewrite still writes nearby (a name added, not swapped) ...
    both = FREE_REWRITE.replace("Simon went", "Simon and Andrew went")
    assert name_swaps(both, FREE_SOURCE, reach=12) == []
    # ... a common noun either text writes in lower case ...
    common = FREE_REWRITE.replace("Simon", "the Family").replace("his brothers", "family")
    assert name_swaps(common, FREE_SOURCE, reach=12) == []
    # ... a word after an article, or after a capitalised word after one: a title or a
    # capitalised common noun ("the Teacher", "the High Priest"), unless at its very slot ...
    for title in ("the Teacher", "the High Priest"):
        titled = FREE_REWRITE.replace("Simon", title)
        assert name_swaps(titled, FREE_SOURCE, reach=12) == [], title
    # ... or a source name that the rewrite writes nearby in another form ("Russian").
    russia = "In the spring the Russian army took Grozny, and the war went on for years."
    kept = "In spring, Chechnya's Grozny fell to Russia; the war went on."
    assert name_swaps(kept, russia, reach=12) == []


def test_spelling_variants_of_short_names_must_be_close():
    # Skeletons of 4 letters or fewer ("ieu" for "Jehu") need difflib's ratio 0.85: "Jehu" is
    # not "Jesus" (0.75), "Tyre" is not "Tyrus"; longer names keep 0.75 ("Timothy").
    source = "And when Jesus saw that a crowd came running, he rebuked the spirit."
    assert name_swaps(source.replace("Jesus", "Jehu"), source) == [
        "'Jehu' where the source has 'Jesus'"
    ]
    assert name_swaps("and Bathsheba said to Timothy", "And Bath-sheba said to Timotheus") == []
    assert name_swaps("and then Elia said to him", "and then Elias said to him") == []


def test_aliases_are_names_one_may_stand_for_another():
    source = "Then Peter and James went up to the temple at the hour of prayer."
    rewrite = "Then Peter and Jacob went up to the temple at the hour of prayer."
    assert name_swaps(rewrite, source) == ["'Jacob' where the source has 'James'"]
    pairs = alias_pairs([["James", "Jacob"]])
    assert ("jacob", "james") in pairs and ("james", "jacob") in pairs
    assert name_swaps(rewrite, source, aliases=pairs) == []
    # An alias covers only its own pair: another name in that place is still a swap.
    other = rewrite.replace("Jacob", "Judas")
    assert name_swaps(other, source, aliases=pairs) == ["'Judas' where the source has 'James'"]
    # The default aliases (config.py: the calibration split's recurring renames) apply.
    assert ["James", "Jacob"] in CFG.name_aliases
    assert judge(rewrite, source, "wikipedia")["failed"] == []


def test_name_swap_rule_is_on_by_default():
    swapped = "Moses went up the mountain, and Mamre spoke to the people of Israel."
    verdict = judge(swapped, MOSES, "wikipedia")
    assert verdict["failed"] == ["name_swap"] and CFG.max_name_swaps == 0
    rule = next(r for r in fidelity_rules(CFG, "wikipedia") if r.name == "name_swap")
    assert "'Mamre' where the source has 'Moses'" in rule.explain(verdict[S.F_NAME_SWAPS])
    off = FidelityConfig(max_name_swaps=None)
    assert judge(swapped, MOSES, "wikipedia", cfg=off)["failed"] == []


def test_entity_swap_rule_names_the_words():
    swapped = "Then Jesus saw Peter and his brother at the Sea of Galilee, and he called them."
    # The default tolerates one (bench/fidelity_gate.py's pick): translations rename.
    assert CFG.max_entity_swaps == 1
    on = FidelityConfig(max_entity_swaps=0, max_name_swaps=None)
    verdict = judge(swapped, SWAP_SOURCE, "wikipedia", cfg=on)
    assert verdict["failed"] == ["entity_swap"] and verdict[S.F_ENTITY_SWAPS]
    rule = next(r for r in fidelity_rules(on, "wikipedia") if r.name == "entity_swap")
    assert "novel 'Peter' while 'Andrew' is missing" in rule.explain(verdict[S.F_ENTITY_SWAPS])
    # The defaults drop it by position instead: "Peter" stands where the source has "Andrew".
    assert judge(swapped, SWAP_SOURCE, "wikipedia")["failed"] == ["name_swap"]


def test_compression_ratio_and_copy_ratio_basics():
    assert compression_ratio("short", 200) is None
    loop = "the same words again " * 40
    assert compression_ratio(loop, 200) < 0.1
    assert copied_ngram_ratio("a b c d", "a b c d", 3) == 1.0
    assert copied_ngram_ratio("x y z", "a b c", 3) == 0.0


def test_score_rewrites_keeps_every_score_as_a_column():
    rows = []
    for i in (9, 11):
        p = PAIRS[i]
        text = clean_generation(p["text"], p["finish_reason"]).text
        rows.append(rewrite_row(p["rewrite_id"], p["style"], text, p["source"]))
    faithful = faithful_rewrites()[0]
    rows.append(
        rewrite_row("news/x#knowledge_list", "knowledge_list", faithful["text"], SOURCES[9])
    )
    table = score_rewrites(pa.Table.from_pylist(rows, schema=S.REWRITES_SCHEMA), CFG)
    out = table.to_pylist()
    assert [r[S.DROP_REASON] for r in out] == ["unfaithful", "boilerplate", None]
    assert out[1][S.DROP_DETAIL].startswith("f_boilerplate=")
    assert all(r[S.F_LENGTH_RATIO] > 0 for r in out) and out[2][S.FIDELITY_FAILED] == []
    assert set(S.FIDELITY_SCHEMA.names) <= set(table.column_names)
