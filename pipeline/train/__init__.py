"""Continued pretraining on token shards: TokenShardDataset (packing, shuffling, rank/worker
split, mixture, resume), the training loop, and its launch on Ray Train (jobs/train.py)."""
