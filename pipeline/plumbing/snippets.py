"""The short excerpt of a text kept beside a dropped row, so a reader of the quarantine sees
what was dropped without opening the source (ingest's bad records, quality's and tokenize's
drops).

    snippet(text)    # its first SNIPPET_CHARS characters
"""

from __future__ import annotations

SNIPPET_CHARS = 200


def snippet(text: str) -> str:
    return text[:SNIPPET_CHARS]
