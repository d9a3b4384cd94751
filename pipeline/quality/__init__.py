"""Quality filters for raw documents and fidelity filters for rewrites."""
