"""The `tokenizer` group (conf/tokenizer/): which tokenizer the tokenize stage uses, or trains.

python jobs/run.py tokenizer=mistral_v1            # the Mixtral-8x7B SentencePiece model
python jobs/run.py tokenizer.train=true            # a 4k BPE model trained on the corpus
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pipeline.config.ranges import Checked, at_least, within


class TokenizerKind(StrEnum):
    model = "model"  # the model preset's own tokenizer
    sentencepiece = "sentencepiece"  # a .model file at `path`
    hf = "hf"  # a tokenizer.json (or a folder holding one) at `path`


class TrainModelType(StrEnum):
    bpe = "bpe"  # SentencePiece's two subword algorithms
    unigram = "unigram"


@dataclass
class TokenizerConfig(Checked):
    # "model": the target model preset's own tokenizer (model.tokenizer, else model.path; a
    # folder's tokenizer.json); "sentencepiece": a .model file at `path`; "hf": a
    # tokenizer.json (or a folder holding one) at `path`.
    kind: TokenizerKind = TokenizerKind.model
    # The tokenizer file for kind sentencepiece/hf; "package:<module>/<file>" names a file an
    # installed package ships (conf/tokenizer/mistral_v1.yaml).
    path: str | None = None
    # Recorded in the manifest; null: the model preset's name, or the file name.
    name: str | None = None
    # One BOS before every document (Llama/Mistral pretraining layout) ...
    add_bos: bool = True
    # ... and one EOS after it, so a packed training sequence shows where documents end.
    add_eos: bool = True
    # BOS by its text; null: the tokenizer's own (the SentencePiece model's id, or the
    # bos_token of tokenizer_config.json beside an HF tokenizer.json).
    bos_token: str | None = None
    # EOS by its text; null: the tokenizer's own (as bos_token).
    eos_token: str | None = None
    # Recorded in the manifest for the loader's padding; null: the tokenizer's own, if any.
    pad_token: str | None = None
    # Train a new SentencePiece model on the stage's input documents instead (kind and path
    # are then ignored); stored in <run>/tokenize/tokenizer/ and recorded in the manifest.
    train: bool = False
    # 4k BPE: trains in well under a second on a few MB (../shared/FACTS.md) and still
    # compresses English to ~4 characters a token; ids fit uint16.
    train_vocab_size: int = 4096
    # "bpe" or "unigram" (SentencePiece's two subword algorithms).
    train_model_type: TrainModelType = TrainModelType.bpe
    # Text fed to the trainer, at most (a deterministic sample of documents by row-id hash),
    # held by the driver. Measured on one core: 2 MB of sample text train a 4k BPE model in
    # 1.2 s, 8 MB in 2.7 s; 50 MB should take ~20 s.
    train_max_bytes: int = 50_000_000
    # Documents per tokenizer call in a worker: large enough to amortise the per-batch
    # overhead, small enough that a batch of long documents stays a few MB.
    batch_rows: int = 256

    def problems(self) -> list[str]:
        problems = at_least(self, 1, "batch_rows", "train_max_bytes")
        # Byte fallback needs 256 byte pieces and 3 specials before any merge.
        problems += within(self, 300, 1 << 20, "train_vocab_size")
        if self.kind != TokenizerKind.model and not self.train and not self.path:
            problems.append(f"path: needed for tokenizer.kind={self.kind}")
        return problems
