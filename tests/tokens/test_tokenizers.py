"""Tokenizers: SentencePiece (packaged and trained), HF tokenizer.json, specials, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import ROOT, local_model_config
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.config.tokenizer import TokenizerConfig
from pipeline.tokens.resolve import resolve_spec, trained_spec
from pipeline.tokens.tokenizers import (
    TokenizerError,
    TokenizerSpec,
    load_tokenizer,
    read_path,
    spec_from_file,
)
from pipeline.tokens.training import train_sentencepiece

MISTRAL = "package:mistral_common/data/tokenizer.model.v1"
MODEL_CACHE = ROOT / ".cache" / "models"
CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "A tokenizer trained on a small corpus still encodes any text, byte by byte if need be.",
    "Numbers like 1234 and 56.78 are split into digits.",
    "Shakespeare wrote: To be, or not to be, that is the question.",
] * 50


@pytest.fixture(scope="module")
def trained() -> bytes:
    return train_sentencepiece(CORPUS, vocab_size=400)


def test_mistral_v1_from_the_package():
    tok = load_tokenizer(spec_from_file("sentencepiece", MISTRAL, "mistral-v1"))
    assert tok.encode_batch(["Hello world."]) == [[1, 22557, 1526, 28723, 2]]
    info = tok.info()
    assert info["vocab_size"] == 32000 and (info["bos_id"], info["eos_id"]) == (1, 2)
    assert info["kind"] == "sentencepiece" and info["name"] == "mistral-v1"
    assert info["sha256"] == tok.sha256 and len(tok.sha256) == 64
    assert tok.decode(tok.encode_plain(["Hello world."])[0]) == "Hello world."


def test_bos_and_eos_follow_the_config():
    spec = spec_from_file("sentencepiece", MISTRAL, add_bos=False, add_eos=True)
    tok = load_tokenizer(spec)
    assert tok.encode_batch(["Hello world.", ""]) == [[22557, 1526, 28723, 2], [2]]
    assert tok.n_special_added == 1


def test_training_is_deterministic_and_the_model_round_trips(trained):
    assert train_sentencepiece(CORPUS, vocab_size=400) == trained
    spec = trained_spec(TokenizerConfig(train=True, train_vocab_size=400), trained, "x.model")
    tok = load_tokenizer(spec)
    assert tok.vocab_size == 400 and (tok.bos_id, tok.eos_id, tok.pad_id) == (1, 2, None)
    assert spec.name == "spm-bpe-400" and spec.source == "trained:x.model"
    ids = tok.encode_batch(["brown fox 1234"])[0]
    assert ids[0] == 1 and ids[-1] == 2
    assert tok.decode(ids[1:-1]) == "brown fox 1234"


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\0"), max_size=200))
def test_any_text_round_trips_through_the_trained_model(trained, text):
    tok = load_tokenizer(TokenizerSpec("sentencepiece", "t", trained, "t"))
    assert tok.decode(tok.encode_plain([text])[0]) == text


def test_training_on_nothing_says_so():
    with pytest.raises(TokenizerError, match="sentencepiece training failed"):
        train_sentencepiece([], vocab_size=400)


def write_word_level(folder: Path, config: dict | None) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, "hello": 3, "world": 4}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    folder.mkdir(parents=True, exist_ok=True)
    tok.save(str(folder / "tokenizer.json"))
    if config is not None:
        (folder / "tokenizer_config.json").write_text(json.dumps(config))
    return folder


def test_hf_specials_come_from_tokenizer_config_or_the_config(tmp_path):
    folder = write_word_level(
        tmp_path / "a", {"bos_token": "<s>", "eos_token": {"content": "</s>"}}
    )
    tok = load_tokenizer(spec_from_file("hf", str(folder)))
    assert tok.encode_batch(["hello world", "world"]) == [[1, 3, 4, 2], [1, 4, 2]]
    assert tok.kind == "hf" and tok.vocab_size == 5

    bare = write_word_level(tmp_path / "b", None)
    with pytest.raises(TokenizerError, match=r"tokenizer\.add_bos: .* no BOS token"):
        load_tokenizer(spec_from_file("hf", str(bare)))
    spec = spec_from_file("hf", str(bare), bos_token="</s>", eos_token="</s>")
    assert load_tokenizer(spec).encode_batch(["hello"]) == [[2, 3, 2]]
    with pytest.raises(TokenizerError, match="'<eos>' is not in"):
        load_tokenizer(spec_from_file("hf", str(bare), bos_token="<s>", eos_token="<eos>"))


def test_missing_or_broken_files_are_named(tmp_path):
    with pytest.raises(TokenizerError, match="no such tokenizer file"):
        read_path(str(tmp_path / "nope.model"))
    with pytest.raises(TokenizerError, match="package 'no_such_pkg' is not installed"):
        read_path("package:no_such_pkg/x.model")
    (tmp_path / "bad.model").write_bytes(b"not a model")
    with pytest.raises(TokenizerError, match="cannot load as a sentencepiece tokenizer"):
        load_tokenizer(spec_from_file("sentencepiece", str(tmp_path / "bad.model")))


def test_a_hub_id_that_cannot_be_fetched_is_a_clear_error(monkeypatch):
    import huggingface_hub

    def offline(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline)
    model = local_model_config()
    model.tokenizer = "Qwen/Qwen3-30B-A3B-Instruct-2507"
    with pytest.raises(TokenizerError, match=r"model\.tokenizer: 'Qwen/.*could not be downloaded"):
        resolve_spec(TokenizerConfig(), model, MODEL_CACHE)


def test_the_local_moe_models_own_tokenizer(local_moe_dir):
    model = local_model_config()
    spec = resolve_spec(TokenizerConfig(), model, MODEL_CACHE)
    assert spec.kind == "hf" and spec.source == "model:local:smollm2-moe"
    assert spec.name == model.name
    tok = load_tokenizer(spec)
    assert tok.vocab_size == 49152  # ids fit uint16
    assert (tok.bos_id, tok.eos_id) == (1, 2)  # <|im_start|>, <|im_end|>: config.json agrees
    text = "Continued pretraining on rewritten text.\n\nA second paragraph, with café."
    ids = tok.encode_batch([text])[0]
    assert ids[0] == 1 and ids[-1] == 2 and tok.decode(ids[1:-1]) == text
    from transformers import AutoTokenizer

    reference = AutoTokenizer.from_pretrained(local_moe_dir)
    assert ids[1:-1] == reference(text, add_special_tokens=False)["input_ids"]


def test_the_fast_hf_encode_gives_the_same_ids_as_encode_batch(local_moe_dir):
    import pyarrow.parquet as pq

    tok = load_tokenizer(resolve_spec(TokenizerConfig(), local_model_config(), MODEL_CACHE))
    texts = [
        t[:20_000]
        for path in sorted((ROOT / "data" / "sample").glob("*/*.parquet"))
        for t in pq.read_table(path, columns=["text"])["text"].to_pylist()[:20]
    ]
    texts += [
        path.read_text(encoding="utf-8")[:20_000]
        for path in sorted((ROOT / "data" / "sample" / "literature").glob("*.txt"))
    ]
    assert len(texts) > 20
    texts += ["", " ", "café\u0301 — 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 <|im_start|>", "\n\n\t1234567"]
    slow = [e.ids for e in tok.tok.encode_batch(texts, add_special_tokens=False)]
    assert tok.encode_plain(texts) == slow
