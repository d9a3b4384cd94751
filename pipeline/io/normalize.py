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
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_BOM = "\ufeff"


def normalize_text(text: str, cfg: NormalizeConfig) -> tuple[str, tuple[str, ...]]:
    """Return the normalised text and the names of the steps that changed it, in order."""
    changes: list[str] = []
    if text.startswith(_BOM):
        text = text[1:]
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
