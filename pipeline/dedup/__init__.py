"""Deduplication: exact digests and the MinHash-LSH core (shingles, signatures, bands)."""
