"""Rewrite stage core: token-aware chunking, the prompt registry, the rewriter, the cache (the
engine: pipeline/models/engine.py; cleaning and the chunk gate: pipeline/text_fidelity)."""
