"""Which tokenizer file a config means: the target model's own, a named file, or a trained one.

    from pipeline.tokens.resolve import resolve_spec, trained_spec
    spec = resolve_spec(config.tokenizer, config.model, Path(".cache/models"))
    spec = trained_spec(config.tokenizer, train_sentencepiece(lines), "tokenize/tokenizer/...")

`tokenizer.kind=model` follows the model preset: `model.tokenizer`, else `model.path`; a
`local:` name is the project's locally built model (built on first use, see
pipeline/models/build.py), a folder is searched for tokenizer.json (HF) then
tokenizer.model (SentencePiece), and anything else is taken as a hub id whose
tokenizer.json is downloaded (GPU clusters; no hub is reachable on the laptop set-up).
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import replace
from pathlib import Path

from pipeline.config.tokenizer import TokenizerConfig
from pipeline.models.build import LOCAL_PREFIX, resolve_model_path
from pipeline.tokens.tokenizers import (
    HF,
    HF_CONFIG_FILE,
    HF_FILE,
    SENTENCEPIECE,
    TokenizerError,
    TokenizerSpec,
    spec_from_file,
)

SP_FILE = "tokenizer.model"


def resolve_spec(t: TokenizerConfig, model, model_cache: Path) -> TokenizerSpec:
    """The spec of a configured (not trained) tokenizer; raises TokenizerError naming the key."""
    specials = {
        "add_bos": t.add_bos,
        "add_eos": t.add_eos,
        "bos_token": t.bos_token,
        "eos_token": t.eos_token,
        "pad_token": t.pad_token,
    }
    if t.kind != "model":
        return spec_from_file(t.kind, t.path, t.name, **specials)
    ref = model.tokenizer or model.path
    folder = _model_folder(ref, model, model_cache)
    if (folder / HF_FILE).is_file():
        kind, file = HF, folder / HF_FILE
    elif (folder / SP_FILE).is_file():
        kind, file = SENTENCEPIECE, folder / SP_FILE
    else:
        raise TokenizerError(f"model.tokenizer: {folder} has neither {HF_FILE} nor {SP_FILE}")
    spec = spec_from_file(kind, str(file), t.name or model.name, **specials)
    # The configured reference, not the resolved path: the manifest stays the same wherever
    # the model cache lives.
    return replace(spec, source=f"model:{ref}")


def trained_spec(t: TokenizerConfig, model_bytes: bytes, stored_at: str) -> TokenizerSpec:
    """The spec of a SentencePiece model trained by the stage (`stored_at`: where it is kept)."""
    return TokenizerSpec(
        kind=SENTENCEPIECE,
        name=t.name or f"spm-{t.train_model_type}-{t.train_vocab_size}",
        data=model_bytes,
        source=f"trained:{stored_at}",
        add_bos=t.add_bos,
        add_eos=t.add_eos,
        bos_token=t.bos_token,
        eos_token=t.eos_token,
        pad_token=t.pad_token,
    )


def _model_folder(ref: str, model, model_cache: Path) -> Path:
    if ref.startswith(LOCAL_PREFIX):
        try:
            return Path(resolve_model_path(ref, model_cache, model.num_experts, model.top_k))
        except ValueError as err:
            raise TokenizerError(f"model.tokenizer: {err}") from err
    path = Path(ref).expanduser()
    if path.is_file():
        return path.parent
    if path.is_dir():
        return path
    return _download(ref)


def _download(repo_id: str) -> Path:
    try:
        from huggingface_hub import hf_hub_download

        file = Path(hf_hub_download(repo_id, HF_FILE))
        # BOS/EOS names, when the repo has the file; its absence is not an error.
        with suppress(Exception):
            hf_hub_download(repo_id, HF_CONFIG_FILE)
    except Exception as err:  # offline, unknown repo, gated model: all end here
        raise TokenizerError(
            f"model.tokenizer: {repo_id!r} is not a local file or folder and its "
            f"{HF_FILE} could not be downloaded ({type(err).__name__}: {err}); "
            "give a local path with tokenizer.kind=hf tokenizer.path=..."
        ) from err
    return file.parent
