"""Token-aware chunking of documents for the rewriter, and joining rewrites back together.

A document is cut on paragraph boundaries (blank lines), a paragraph that does not fit on
sentence boundaries, and a sentence that does not fit on word boundaries, so that no chunk
exceeds `budget` tokens of the rewriter's own tokenizer. Separators stay attached to the
text before them, so the chunks concatenate back to the document byte for byte.

    budget = prompt_budget(max_model_len=8192, max_new_tokens=1536,
                           prompt_overhead_tokens=90, context_tokens=0)
    chunks = chunk_document("wiki/42", text, lambda s: len(sp.encode(s)), budget)
    assert "".join(c.text for c in chunks) == text
    rewritten_doc = join_rewrites([rewrite(c.text) for c in chunks])
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

# Boundary strength after a piece: cutting after a paragraph beats a sentence beats a word.
PARAGRAPH, SENTENCE, WORD = 0, 1, 2

# A blank line (possibly holding spaces) and all whitespace after it ends a paragraph.
_PARAGRAPH_SEP = re.compile(r"\n[ \t\r\f\v]*\n\s*")
# Candidate sentence ends: terminal punctuation (plus closing quotes/brackets) before
# whitespace, CJK terminal punctuation (no space follows it), or a line break inside a
# paragraph (lists, verse, headings). Abbreviations are filtered out in `_is_sentence_end`.
_SENTENCE_END = re.compile(
    r"[.!?…]+[\"'”’»)\]]*\s+|[。！？]+[\"'”’»）」』]*\s*|\n\s*",
)
# Words that end in "." without ending a sentence. Deliberately short: a missed split only
# makes a sentence longer (it still fits, by falling back to words), a wrong split is worse.
_ABBREVIATIONS = frozenset(
    {"e.g", "i.e", "cf", "vs", "etc", "al", "approx", "dr", "mr", "mrs", "ms", "prof", "sr"}
    | {"jr", "st", "mt", "no", "fig", "eq", "ch", "vol", "pp", "inc", "ltd", "co"}
)
_WORD_RUN = re.compile(r"\s*\S+\s*")


@dataclass(frozen=True)
class Chunk:
    doc_id: str
    index: int  # 0..n-1 within the document
    text: str
    start: int  # character offsets: document[start:end] == text
    end: int
    n_tokens: int  # count_tokens(text), measured on the final chunk


@dataclass(frozen=True)
class _Piece:
    start: int
    end: int
    n_tokens: int
    boundary: int  # strength of the boundary after this piece
    is_word: bool  # a single word: the one thing allowed to exceed the budget


def prompt_budget(
    max_model_len: int, max_new_tokens: int, prompt_overhead_tokens: int, context_tokens: int
) -> int:
    """Tokens left for the chunk once the prompt frame, the context and the answer are reserved."""
    budget = max_model_len - max_new_tokens - prompt_overhead_tokens - context_tokens
    if budget < 1:
        raise ValueError(
            f"no room for a chunk: max_model_len {max_model_len} - max_new_tokens "
            f"{max_new_tokens} - prompt overhead {prompt_overhead_tokens} - context "
            f"{context_tokens} = {budget} tokens; raise max_model_len or lower the others"
        )
    return budget


def chunk_document(
    doc_id: str, text: str, count_tokens: Callable[[str], int], budget: int
) -> list[Chunk]:
    """Cut `text` into chunks of at most `budget` tokens, preferring paragraph boundaries.

    A single word longer than the budget (a URL, a base64 blob) becomes a chunk of its own
    and is the only chunk allowed over budget; the stage should drop it by its n_tokens.
    `count_tokens` should count without special tokens (BOS/EOS): the prompt frame holds those.
    """
    if budget < 1:
        raise ValueError(f"chunk budget must be >= 1 token, got {budget}")
    if not text:
        return []
    pieces = _pieces(text, count_tokens, budget)
    groups = [
        g for group in _pack(pieces, budget) for g in _verify(text, group, count_tokens, budget)
    ]
    chunks = []
    for index, (group, n_tokens) in enumerate(groups):
        start, end = group[0].start, group[-1].end
        chunks.append(Chunk(doc_id, index, text[start:end], start, end, n_tokens))
    return chunks


def join_rewrites(texts: list[str]) -> str:
    """One rewritten document from its chunks' rewrites: trimmed, blank-line separated.

    Rewrites do not keep the source's whitespace, so chunks are joined as paragraphs; empty
    rewrites are skipped so a dropped chunk leaves no stray blank lines.
    """
    return "\n\n".join(t.strip() for t in texts if t.strip())


def split_paragraphs(text: str) -> list[tuple[int, int]]:
    """(start, end) spans of paragraphs, each keeping the blank lines after it."""
    return _spans(text, 0, len(text), _PARAGRAPH_SEP.finditer(text))


def split_sentences(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """(start, end) spans of sentences in text[start:end], each keeping its trailing space.

    Pragmatic rules: a sentence ends at . ! ? … followed by whitespace, unless the word before
    is a known abbreviation (e.g., Dr., etc.), a single letter (initials: "J. Smith") or the
    next word starts lowercase; at 。！？; and at a line break. "3.14" never splits (no space).
    """
    end = len(text) if end is None else end
    ends = (m for m in _SENTENCE_END.finditer(text, start, end) if _is_sentence_end(text, m))
    return _spans(text, start, end, ends)


def _spans(
    text: str, start: int, end: int, separators: Iterable[re.Match[str]]
) -> list[tuple[int, int]]:
    spans, begin = [], start
    for m in separators:
        # Leading whitespace joins the next span: a blank chunk would be sent to the model.
        if m.end() <= begin or m.end() >= end or not text[begin : m.start()].strip():
            continue
        spans.append((begin, m.end()))
        begin = m.end()
    spans.append((begin, end))
    return spans


def _is_sentence_end(text: str, m: re.Match) -> bool:
    punct = text[m.start()]
    if "\n" in m.group() or punct in "。！？":
        return True
    if text[m.end() : m.end() + 1].islower():
        return False
    if punct != ".":
        return True
    # Only a short look-back: slicing the whole prefix would make splitting quadratic.
    before = text[max(0, m.start() - 24) : m.start()].split()
    word = before[-1].lstrip("([{\"'“‘").lower() if before else ""
    return not (word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha()))


def _pieces(text: str, count_tokens: Callable[[str], int], budget: int) -> list[_Piece]:
    """Units small enough to pack: paragraphs, or their sentences, or those sentences' words.

    Each text is counted once at the coarsest level that fits, so tokenization work stays
    linear in the document (at most three passes over any character).
    """
    pieces: list[_Piece] = []
    for p_start, p_end in split_paragraphs(text):
        n = count_tokens(text[p_start:p_end])
        if n <= budget:
            pieces.append(_Piece(p_start, p_end, n, PARAGRAPH, False))
            continue
        sentences = split_sentences(text, p_start, p_end)
        for s_start, s_end in sentences:
            strength = PARAGRAPH if s_end == p_end else SENTENCE
            n = count_tokens(text[s_start:s_end])
            if n <= budget:
                pieces.append(_Piece(s_start, s_end, n, strength, False))
                continue
            words = [m.span() for m in _WORD_RUN.finditer(text, s_start, s_end)] or [
                (s_start, s_end)
            ]
            for w_start, w_end in words:
                w_strength = strength if w_end == s_end else WORD
                n = count_tokens(text[w_start:w_end])
                pieces.append(_Piece(w_start, w_end, n, w_strength, True))
    return pieces


def _pack(pieces: list[_Piece], budget: int) -> list[list[_Piece]]:
    """Greedy packing by summed counts; a full chunk is cut at its strongest late boundary."""
    groups: list[list[_Piece]] = []
    current: list[_Piece] = []
    total = 0
    for piece in pieces:
        if current and total + piece.n_tokens > budget:
            cut = _best_cut(current, budget)
            groups.append(current[:cut])
            current = current[cut:]
            total = sum(p.n_tokens for p in current)
            if current and total + piece.n_tokens > budget:
                groups.append(current)
                current, total = [], 0
        current.append(piece)
        total += piece.n_tokens
    if current:
        groups.append(current)
    return groups


def _best_cut(current: list[_Piece], budget: int) -> int:
    """Where to end a full chunk: the strongest boundary that leaves it at least half full.

    Without this, a chunk would end wherever the budget ran out (mid-paragraph); with it,
    the rewriter mostly sees whole paragraphs at the cost of chunks 50-100% full.
    """
    best, best_key, filled = len(current), None, 0
    for i, piece in enumerate(current, start=1):
        filled += piece.n_tokens
        if filled * 2 >= budget:
            key = (piece.boundary, -i)
            if best_key is None or key <= best_key:
                best, best_key = i, key
    return best


def _verify(
    text: str, group: list[_Piece], count_tokens: Callable[[str], int], budget: int
) -> list[tuple[list[_Piece], int]]:
    """Count the packed chunk for real; split it in two by tokens if the sum underestimated.

    Tokenizers are near-additive across whitespace, so this rarely recurses; it terminates
    because a single piece was itself counted within budget (or is one word).
    """
    n = count_tokens(text[group[0].start : group[-1].end])
    if n <= budget or len(group) == 1:
        return [(group, n)]
    half, acc, cut = sum(p.n_tokens for p in group) / 2, 0, 1
    for i, piece in enumerate(group[:-1], start=1):
        acc += piece.n_tokens
        cut = i
        if acc >= half:
            break
    return _verify(text, group[:cut], count_tokens, budget) + _verify(
        text, group[cut:], count_tokens, budget
    )
