"""Local models the project builds itself: SmolLM2 from its PyPI GGUF, upcycled to a MoE."""
