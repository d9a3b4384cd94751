"""Tokenization: tokenizers (SentencePiece, HF), mixing raw and rewritten documents, the stage.

The shard files and manifest it writes are pipeline/token_shards/ (the format training reads).
"""
