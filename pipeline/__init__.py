"""Synthetic-data rewriting pipeline for continued pretraining (see README.md)."""
