"""Tests for jobs.sample.wikitext: each construct on a small real-looking example, then the dump."""

from __future__ import annotations

import bz2
import io
import itertools
import zipfile
from pathlib import Path

import pytest

from jobs.sample.corpus import ENWIKI_MEMBER, GENSIM, iter_wiki_pages
from jobs.sample.wikitext import wikitext_to_plain

ROOT = Path(__file__).resolve().parents[2]
ARCHIVE_CACHES = [ROOT / ".cache" / "packages", Path("/tmp/probe")]


def test_comments_are_removed():
    assert wikitext_to_plain("Anarchism<!-- see talk page --> is a philosophy.") == (
        "Anarchism is a philosophy."
    )


def test_unclosed_comment_runs_to_the_end():
    assert wikitext_to_plain("Kept text. <!-- never closed\nlost") == "Kept text."


def test_references_are_removed_paired_and_self_closing():
    markup = (
        'Autism affects 1 in 68 children.<ref name="cdc">{{cite web|url=http://cdc.gov}}</ref>'
        ' It is lifelong.<ref name="cdc" /> Signs appear early.<ref>Smith 2004, p. 3</ref>'
    )
    assert wikitext_to_plain(markup) == (
        "Autism affects 1 in 68 children. It is lifelong. Signs appear early."
    )


def test_other_html_tags_keep_their_text():
    markup = "Water is H<sub>2</sub>O.<br />It is <span style='color:blue'>blue</span>."
    assert wikitext_to_plain(markup) == "Water is H2O.It is blue."


def test_templates_are_removed():
    markup = "'''Albedo''' {{IPAc-en|æ|l|ˈ|b|iː|d|oʊ}} is the reflectivity of a surface."
    assert wikitext_to_plain(markup) == "Albedo is the reflectivity of a surface."


def test_nested_templates_and_parameters_are_removed():
    markup = (
        "{{Infobox country\n| name = {{lang|fr|Andorre}}\n| capital = {{{capital|Andorra la"
        " Vella}}}\n| area = {{convert|468|km2|{{abbr|sq mi|square miles}}}}\n}}\n"
        "Andorra is a landlocked microstate."
    )
    assert wikitext_to_plain(markup) == "Andorra is a landlocked microstate."


def test_tables_are_removed_even_nested():
    markup = (
        'Results follow.\n{| class="wikitable"\n|-\n! Year !! Title\n|-\n| 1999 |'
        "\n{|\n| inner || table\n|}\n|}\nAfter the table."
    )
    assert wikitext_to_plain(markup) == "Results follow.\n\nAfter the table."


def test_file_image_and_category_links_are_removed_with_nested_links_in_captions():
    markup = (
        "[[File:Aristotle Altemps.jpg|thumb|Bust of [[Aristotle]] after [[Lysippus|a bronze]]]]\n"
        "Aristotle was a Greek philosopher.\n[[Image:Map.png|left|Map]]\n"
        "[[Category:Ancient Greek philosophers]]\n[[Category:People from Stagira| ]]"
    )
    assert wikitext_to_plain(markup) == "Aristotle was a Greek philosopher."


def test_interlanguage_links_are_removed_but_interwiki_text_stays():
    markup = (
        "See [[wikt:anarchy|anarchy]] in the dictionary.\n[[de:Anarchismus]]\n[[zh-yue:無政府主義]]"
    )
    assert wikitext_to_plain(markup) == "See anarchy in the dictionary."


def test_links_keep_label_or_target():
    markup = (
        "[[Alabama]] is a state in the [[Southeastern United States|southeastern]] region "
        "of the [[United States]]s, see [[:Category:Alabama|the category]]."
    )
    assert wikitext_to_plain(markup) == (
        "Alabama is a state in the southeastern region of the United Statess, see the category."
    )


def test_external_links_keep_their_label():
    markup = "Read the [http://www.example.org/report.pdf official report] [http://example.org]."
    assert wikitext_to_plain(markup) == "Read the official report."


def test_bold_and_italic_quotes_are_removed():
    markup = "'''''Amsterdam''''' is the ''capital'' of the '''Netherlands'''; it's flat."
    assert wikitext_to_plain(markup) == "Amsterdam is the capital of the Netherlands; it's flat."


def test_headings_become_lines_of_their_own():
    markup = "Intro text.\n== History ==\nEarly days.\n=== Origins===\nThe first settlers."
    assert wikitext_to_plain(markup) == (
        "Intro text.\n\nHistory\n\nEarly days.\n\nOrigins\n\nThe first settlers."
    )


def test_headings_of_emptied_sections_are_dropped():
    markup = (
        "Body text.\n== See also ==\n== References ==\n{{reflist}}\n"
        "== History ==\n=== Early ===\nOld.\n== External links ==\n* {{official|http://x.org}}"
    )
    assert wikitext_to_plain(markup) == "Body text.\n\nHistory\n\nEarly\n\nOld."


def test_list_markers_are_removed():
    markup = "Types:\n* Social anarchism\n** Mutualism\n# First\n: Indented\n; Term"
    assert wikitext_to_plain(markup) == (
        "Types:\nSocial anarchism\nMutualism\nFirst\nIndented\nTerm"
    )


def test_html_entities_are_unescaped():
    markup = "Rock&nbsp;&amp;&nbsp;roll, 5&nbsp;&ndash;&nbsp;6 &lt;ref&gt; stays literal"
    assert wikitext_to_plain(markup) == "Rock & roll, 5 – 6 <ref> stays literal"


def test_blank_lines_collapse_and_trailing_spaces_go():
    markup = "First paragraph.   \n\n\n\n\nSecond paragraph.  "
    assert wikitext_to_plain(markup) == "First paragraph.\n\nSecond paragraph."


def test_debris_of_removed_templates_is_tidied():
    markup = "'''Achilles''' ({{lang-grc|Ἀχιλλεύς}}, ''Akhilleus'', {{IPA|x}}) was a hero."
    assert wikitext_to_plain(markup) == "Achilles (Akhilleus) was a hero."


@pytest.mark.parametrize(
    "markup",
    [
        "{{unclosed template | with [[a link]] and text",
        "closers without openers }} and ]] here",
        "{{{{{{{{{{",
        "}}}}}}}}}}}}}",
        "[[[[[[[[[[ deep ]]",
        "{| unclosed table\n|-\n| cell\nProse after.",
        "<ref>never closed, then text",
        "== unbalanced heading =",
        "[http://example.org unclosed external link",
        "'''" * 50,
    ],
)
def test_unbalanced_markup_neither_hangs_nor_raises(markup):
    plain = wikitext_to_plain(markup)
    assert "{{" not in plain and "}}" not in plain
    assert "[[" not in plain and "]]" not in plain


def test_unbalanced_template_keeps_the_following_prose():
    assert wikitext_to_plain("{{Infobox\nThe city lies on a river.") == (
        "Infobox\nThe city lies on a river."
    )


# A hang guard, not a speed test: the scans are linear (milliseconds here); a quadratic or
# recursive one would take minutes on 20,000 levels, or overflow the stack, and fail here.
@pytest.mark.timeout(120)
def test_pathological_nesting_keeps_the_innermost_text():
    markup = "{{" * 20_000 + "x" + "}}" * 19_999 + "[[" * 20_000 + "y" + "]]" * 20_000
    assert wikitext_to_plain(markup) == "y"  # "x" is template content: it goes


def _cached_gensim_wheel() -> Path | None:
    for cache in ARCHIVE_CACHES:
        if wheels := sorted(cache.glob(GENSIM.archive_glob)):
            return wheels[0]
    return None


def test_real_dump_articles_have_no_markup_left():
    wheel = _cached_gensim_wheel()
    if wheel is None:
        pytest.skip(f"no {GENSIM.archive_glob} in {[str(c) for c in ARCHIVE_CACHES]}")
    with zipfile.ZipFile(wheel) as archive:
        dump = bz2.BZ2File(io.BytesIO(archive.read(ENWIKI_MEMBER)))
        articles = (p for p in iter_wiki_pages(dump) if p["ns"] == "0" and not p["redirect"])
        first_five = list(itertools.islice(articles, 5))
    assert len(first_five) == 5
    for page in first_five:
        plain = wikitext_to_plain(page["markup"])
        assert len(plain) > 1000, page["title"]
        for leftover in ("{{", "}}", "[[", "]]", "<ref", "{|", "&nbsp;", "'''"):
            assert leftover not in plain, (page["title"], leftover)
