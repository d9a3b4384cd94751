"""Corpora with planted duplicates for the dedup stage's tests: exact copies, near copies
(a few words changed), an excerpt of a long document, and a few odd documents."""

from __future__ import annotations

import random

VOCAB = [f"w{i}" for i in range(5000)]


def words(rng: random.Random, n: int) -> list[str]:
    return [rng.choice(VOCAB) for _ in range(n)]


def edit(rng: random.Random, text: list[str], rate: float) -> list[str]:
    out = list(text)
    for i in rng.sample(range(len(out)), int(len(out) * rate)):
        out[i] = rng.choice(VOCAB)
    return out


def planted_records(
    rng: random.Random, originals: int = 20, excerpt: slice = slice(400, 600)
) -> list[dict]:
    """`originals` distinct 300-word documents doc-NN, then: dup-of-00 (exact), dup-of-01-b and
    -c (exact), near-of-02 (2% of words changed), near-of-03 (1%), long (1200 words) and
    excerpt-of-long (words `excerpt` of it), one-word and one-word-again (exact), cyrillic, cjk."""
    base = [words(rng, 300) for _ in range(originals)]
    records = [{"id": f"doc-{i:02d}", "text": " ".join(doc)} for i, doc in enumerate(base)]
    records.append({"id": "dup-of-00", "text": " ".join(base[0])})
    records.append({"id": "dup-of-01-b", "text": " ".join(base[1])})
    records.append({"id": "dup-of-01-c", "text": " ".join(base[1])})
    records.append({"id": "near-of-02", "text": " ".join(edit(rng, base[2], 0.02))})
    records.append({"id": "near-of-03", "text": " ".join(edit(rng, base[3], 0.01))})
    long_doc = words(rng, 1200)
    records.append({"id": "long", "text": " ".join(long_doc)})
    records.append({"id": "excerpt-of-long", "text": " ".join(long_doc[excerpt])})
    records.append({"id": "one-word", "text": "hello"})
    records.append({"id": "one-word-again", "text": "hello"})
    records.append(
        {"id": "cyrillic", "text": "Съешь же ещё этих мягких французских булок, да выпей чаю " * 3}
    )
    records.append({"id": "cjk", "text": "我能吞下玻璃而不伤身体。" * 5})
    return records
