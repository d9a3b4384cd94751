"""Quality filters for raw documents, and the fidelity stage for rewrites (its scores and rules:
pipeline/text_fidelity)."""
