"""Rewrite stage core: token-aware chunking, the prompt registry, post-processing, the cache."""
