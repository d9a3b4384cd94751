"""normalize_text: each step, the change names it reports, its switches, and its invariants."""

from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from pipeline.config import NormalizeConfig
from pipeline.ingest.normalize import normalize_text

DEFAULT = NormalizeConfig()
REMOVED_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")

configs = st.builds(
    NormalizeConfig,
    nfc=st.booleans(),
    newlines=st.booleans(),
    control_chars=st.booleans(),
    strip=st.booleans(),
)
# Text rich in the characters the steps care about, mixed with arbitrary code points.
interesting = st.sampled_from(
    # BOM, line ends, whitespace, removed and kept controls
    ["\ufeff", "\r", "\n", "\r\n", "\t", " ", "\x00", "\x1f", "\x7f", "\x85", "\x9f", "\u2028",
     # bases, combining marks, Hangul jamo, canonical singletons
     "e", "\u0301", "\u0327", "A", "\u030a", "\u1100", "\u1161", "\u11a8", "\u2000", "\u212b"]
)  # fmt: skip
texts = st.lists(st.one_of(interesting, st.text(max_size=3)), max_size=30).map("".join)


def test_clean_text_is_returned_unchanged_with_no_changes():
    assert normalize_text("plain text\twith a tab\nand a newline", DEFAULT) == (
        "plain text\twith a tab\nand a newline",
        (),
    )


def test_leading_bom_is_removed():
    assert normalize_text("\ufeffhello", DEFAULT) == ("hello", ("bom",))


def test_bom_inside_the_text_is_kept():
    assert normalize_text("a\ufeffb", DEFAULT) == ("a\ufeffb", ())


def test_repeated_leading_boms_are_all_removed():
    assert normalize_text("\ufeff\ufeffhello", DEFAULT) == ("hello", ("bom",))


def test_bom_behind_leading_whitespace_or_controls_is_removed():
    assert normalize_text(" \ufeffhello", DEFAULT) == ("hello", ("bom", "strip"))
    assert normalize_text("\x00\ufeffhello", DEFAULT) == ("hello", ("bom", "control_chars"))


def test_crlf_becomes_lf():
    assert normalize_text("a\r\nb\r\nc", DEFAULT) == ("a\nb\nc", ("newlines",))


def test_lone_cr_becomes_lf():
    assert normalize_text("a\rb\r\rc", DEFAULT) == ("a\nb\n\nc", ("newlines",))


def test_c0_controls_are_removed_but_tab_and_newline_kept():
    text = "a\x00b\x07c\x08\td\x0b\x0ce\x1b\nf\x1f"
    assert normalize_text(text, DEFAULT) == ("abc\tde\nf", ("control_chars",))


def test_c1_controls_and_delete_are_removed():
    assert normalize_text("a\x7fb\x80c\x85d\x9fe", DEFAULT) == ("abcde", ("control_chars",))


def test_characters_just_outside_the_control_ranges_are_kept():
    assert normalize_text("a\xa0b\u200bc", DEFAULT) == ("a\xa0b\u200bc", ())


def test_nfd_is_composed_to_nfc():
    assert normalize_text("caf" + "e\u0301", DEFAULT) == ("café", ("nfc",))


def test_nfc_applies_canonical_singletons():
    # U+212B ANGSTROM SIGN is canonically U+00C5.
    assert normalize_text("\u212b", DEFAULT) == ("\u00c5", ("nfc",))


def test_nfc_keeps_compatibility_characters():
    assert normalize_text("ﬁ ①", DEFAULT) == ("ﬁ ①", ())


def test_leading_and_trailing_whitespace_is_stripped():
    assert normalize_text("  \n\thello world \n ", DEFAULT) == ("hello world", ("strip",))


def test_all_steps_report_in_order():
    text = "\ufeff  cafe\u0301\x00\r\nnext line\r  "
    assert normalize_text(text, DEFAULT) == (
        "café\nnext line",
        ("bom", "newlines", "control_chars", "nfc", "strip"),
    )


def test_docstring_example():
    assert normalize_text("caf\u0065\u0301\r\n", DEFAULT) == (
        "café",
        ("newlines", "nfc", "strip"),
    )


def test_removing_a_control_char_lets_nfc_compose_across_it():
    assert normalize_text("e\x00\u0301", DEFAULT) == ("é", ("control_chars", "nfc"))


@pytest.mark.parametrize(
    ("switch", "text"),
    [
        ("newlines", "a\r\nb\rc"),
        ("control_chars", "a\x00b\x85c"),
        ("nfc", "cafe\u0301"),
        ("strip", "  hello  "),
    ],
)
def test_each_step_can_be_switched_off(switch, text):
    on, on_changes = normalize_text(text, DEFAULT)
    assert on != text
    assert on_changes == (switch,)
    off = NormalizeConfig(**{switch: False})
    assert normalize_text(text, off) == (text, ())


def test_everything_off_still_removes_the_bom():
    off = NormalizeConfig(nfc=False, newlines=False, control_chars=False, strip=False)
    text = "\ufeff a\r\n\x00e\u0301 "
    assert normalize_text(text, off) == (text[1:], ("bom",))


def test_newlines_off_keeps_cr_through_control_step():
    cfg = NormalizeConfig(newlines=False)
    assert normalize_text("a\r\nb", cfg) == ("a\r\nb", ())


@given(texts)
@example("\ufeff\ufeffa")
@example(" \ufeffa")
@example("\x00\ufeffa")
@example("\r\ufeff")
def test_normalizing_twice_changes_nothing_more(text):
    once, _ = normalize_text(text, DEFAULT)
    assert normalize_text(once, DEFAULT) == (once, ())


@given(texts, configs)
@example("\x00 \ufeff\x00 a", NormalizeConfig(strip=False))
@example("\x00 \ufeff\x00 a", NormalizeConfig(control_chars=False))
def test_idempotent_under_any_switch_combination(text, cfg):
    once, _ = normalize_text(text, cfg)
    assert normalize_text(once, cfg) == (once, ())


@given(texts)
def test_output_has_no_cr_and_no_removed_controls(text):
    out, _ = normalize_text(text, DEFAULT)
    assert "\r" not in out
    assert not REMOVED_CONTROLS.search(out)


@given(texts)
def test_output_is_nfc_stripped_and_bom_free_at_start(text):
    out, _ = normalize_text(text, DEFAULT)
    assert unicodedata.is_normalized("NFC", out)
    assert out == out.strip()
    assert not out.startswith("\ufeff")


@given(texts)
def test_changes_are_reported_in_step_order_without_repeats(text):
    _, changes = normalize_text(text, DEFAULT)
    order = ["bom", "newlines", "control_chars", "nfc", "strip"]
    assert list(changes) == [step for step in order if step in changes]


@given(st.text())
def test_no_changes_reported_means_text_is_unchanged(text):
    out, changes = normalize_text(text, DEFAULT)
    assert (out == text) == (changes == ())
