"""Train a SentencePiece model on the corpus (`tokenizer.train=true`), deterministically.

from pipeline.tokens.training import train_sentencepiece
model_bytes = train_sentencepiece(lines, vocab_size=4096)   # the .model file's bytes
"""

from __future__ import annotations

import io
from collections.abc import Iterable

from pipeline.tokens.tokenizers import TokenizerError


def train_sentencepiece(
    lines: Iterable[str], vocab_size: int = 4096, model_type: str = "bpe"
) -> bytes:
    """Train a SentencePiece model on `lines` and return the .model file's bytes.

    Deterministic for the same lines in the same order: one thread (2 threads give another
    model), no sampling of the input. Byte fallback and identity normalisation make any
    text encodable and decode(encode(text)) == text; digits are split one per token.
    Special ids: unk 0, bos 1, eos 2 (Llama/Mistral's layout), no pad.
    """
    import sentencepiece as spm

    writer = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(lines),
            model_writer=writer,
            vocab_size=vocab_size,
            model_type=model_type,
            byte_fallback=True,
            character_coverage=1.0,
            normalization_rule_name="identity",
            add_dummy_prefix=False,
            remove_extra_whitespaces=False,
            allow_whitespace_only_pieces=True,
            split_digits=True,
            input_sentence_size=0,
            shuffle_input_sentence=False,
            num_threads=1,
            # Lines longer than this are skipped by the trainer (default 4192 bytes).
            max_sentence_length=1 << 16,
            unk_id=0,
            bos_id=1,
            eos_id=2,
            pad_id=-1,
            minloglevel=2,
        )
    except RuntimeError as err:
        raise TokenizerError(f"sentencepiece training failed: {err}") from err
    return writer.getvalue()
