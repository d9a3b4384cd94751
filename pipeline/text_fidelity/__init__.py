"""Whether a generated rewrite is usable and faithful to the source text it rewrote.

cleaning: a raw generation's edges stripped, refusals and truncation flagged; scores: the
fidelity scores and the rules on them (with repetition's Gopher measure); chunk_gate: those
rules on one chunk. The rewrite stage judges each chunk with them while the engine runs
(best-of-n) and the fidelity stage judges whole rewrites after it; the two are peers, so the
rules live here, below both.
"""
