"""Text normalisation applied to every document at ingest, reporting what it changed.

Every later stage hashes, shingles or tokenizes this text, so one canonical form per visible
string matters: the same article with CRLF line ends or in NFD must hash the same.

    text, changes = normalize_text("caf\\u0065\\u0301\\r\\n", NormalizeConfig())
    # -> ("café", ("newlines", "nfc", "strip"))
"""

from __future__ import annotations

import re
import unicodedata

from pipeline.config import NormalizeConfig

# C0 and C1 controls except tab (\t) and newline (\n); \r is handled by the newline step.
_CONTROLS = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
_CONTROL_CHARS = re.compile(f"[{_CONTROLS}]")
_BOM = "\ufeff"
# The leading run of BOMs and of what later steps remove from the start (controls, with
# control_chars; whitespace, with strip): a BOM anywhere in it would otherwise end up first
# in the output and a second pass would remove it. By (control_chars, strip).
_LEADING = {
    (controls, strip): re.compile(
        "[" + _BOM + (_CONTROLS if controls else "") + (r"\s" if strip else "") + "]*"
    )
    for controls in (False, True)
    for strip in (False, True)
}


def normalize_text(text: str, cfg: NormalizeConfig) -> tuple[str, tuple[str, ...]]:
    """Return the normalised text and the names of the steps that changed it, in order."""
    changes: list[str] = []
    lead = _LEADING[cfg.control_chars, cfg.strip].match(text).group()
    if _BOM in lead:
        text = lead.replace(_BOM, "") + text[len(lead) :]
        changes.append("bom")
    if cfg.newlines and "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        changes.append("newlines")
    if cfg.control_chars:
        cleaned = _CONTROL_CHARS.sub("", text)
        if cleaned != text:
            text = cleaned
            changes.append("control_chars")
    if cfg.nfc and not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
        changes.append("nfc")
    if cfg.strip:
        stripped = text.strip()
        if stripped != text:
            text = stripped
            changes.append("strip")
    return text, tuple(changes)
