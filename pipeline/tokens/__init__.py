"""Tokenization: tokenizers (SentencePiece, HF), Arrow token shards, their manifest, the stage."""
