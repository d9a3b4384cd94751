"""The similarity core: shingles, MinHash, LSH banding, windows and exact set measures.

Pure numpy/numba, no Ray: the dedup stage and the fidelity stage both build on it.
"""
