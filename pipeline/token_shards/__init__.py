"""Token shards on disk: the Arrow IPC shard files and their manifest.json.

The format between two stages: the tokenize stage writes it (pipeline/tokens/), training reads
it (pipeline/train/) and provenance follows it back to the documents. It sits on the ground
floor so that both stages import it and neither imports the other.
"""
