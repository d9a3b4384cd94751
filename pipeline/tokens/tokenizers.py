"""Tokenizers behind one small interface: SentencePiece `.model` files and HF `tokenizer.json`.

A `TokenizerSpec` carries the tokenizer file's bytes, so Ray workers on any node load the
same tokenizer without a shared disk, and its sha256 is the one the manifest records.

    from pipeline.tokens.tokenizers import load_tokenizer, spec_from_file
    spec = spec_from_file("sentencepiece", "package:mistral_common/data/tokenizer.model.v1")
    tok = load_tokenizer(spec)
    tok.encode_batch(["Hello world."])   # [[1, 22557, 1526, 28723, 2]]: BOS ... EOS
    tok.vocab_size, tok.bos_id, tok.eos_id, tok.sha256, tok.info()

Which file a config means (the target model's own tokenizer, a packaged file) is decided in
resolve.py; training a new SentencePiece model is in training.py.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

SENTENCEPIECE = "sentencepiece"
HF = "hf"
KINDS = (SENTENCEPIECE, HF)
PACKAGE_PREFIX = "package:"  # package:<module>/<path inside it>
HF_FILE = "tokenizer.json"
HF_CONFIG_FILE = "tokenizer_config.json"


class TokenizerError(ValueError):
    """A tokenizer cannot be found or loaded, or lacks a special token the config asks for."""


@dataclass(frozen=True)
class TokenizerSpec:
    """Everything a worker needs to build the tokenizer (picklable; the file's bytes inside)."""

    kind: str  # "sentencepiece" or "hf"
    name: str
    data: bytes  # the .model / tokenizer.json file
    source: str  # where the file came from, for the manifest (a path, package:..., trained)
    add_bos: bool = True
    add_eos: bool = True
    # Special tokens by text; None: the tokenizer's own (SentencePiece's model, or the HF
    # tokenizer_config.json found beside tokenizer.json).
    bos_token: str | None = None
    eos_token: str | None = None
    pad_token: str | None = None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def read_path(path: str) -> Path:
    """A file path, or `package:<module>/<file>` for a file an installed package ships."""
    if path.startswith(PACKAGE_PREFIX):
        module, _, inner = path[len(PACKAGE_PREFIX) :].partition("/")
        try:
            root = resources.files(module)
        except ModuleNotFoundError as err:
            raise TokenizerError(f"{path}: package {module!r} is not installed") from err
        found = Path(str(root / inner))
    else:
        found = Path(path).expanduser()
    if found.is_dir() and (found / HF_FILE).is_file():
        found = found / HF_FILE
    if not found.is_file():
        raise TokenizerError(f"{path}: no such tokenizer file ({found})")
    return found


def spec_from_file(
    kind: str,
    path: str,
    name: str | None = None,
    add_bos: bool = True,
    add_eos: bool = True,
    bos_token: str | None = None,
    eos_token: str | None = None,
    pad_token: str | None = None,
) -> TokenizerSpec:
    """Read a tokenizer file (a folder holding tokenizer.json is fine for kind "hf").
    For HF, special tokens not given come from tokenizer_config.json beside the file."""
    if kind not in KINDS:
        raise TokenizerError(f"tokenizer kind {kind!r} not in {KINDS}")
    file = read_path(path)
    if kind == HF:
        defaults = _hf_special_tokens(file.parent / HF_CONFIG_FILE)
        bos_token = bos_token or defaults.get("bos_token")
        eos_token = eos_token or defaults.get("eos_token")
        pad_token = pad_token or defaults.get("pad_token")
    return TokenizerSpec(
        kind=kind,
        name=name or file.name,
        data=file.read_bytes(),
        source=path,
        add_bos=add_bos,
        add_eos=add_eos,
        bos_token=bos_token,
        eos_token=eos_token,
        pad_token=pad_token,
    )


def _hf_special_tokens(config_file: Path) -> dict[str, str]:
    if not config_file.is_file():
        return {}
    config = json.loads(config_file.read_text(encoding="utf-8"))
    out = {}
    for key in ("bos_token", "eos_token", "pad_token"):
        value = config.get(key)
        if isinstance(value, dict):  # {"content": "<s>", ...} in older files
            value = value.get("content")
        if isinstance(value, str):
            out[key] = value
    return out


class Tokenizer(ABC):
    """Encode batches of text into token ids with BOS/EOS added as configured."""

    kind: str

    def __init__(self, spec: TokenizerSpec):
        self.spec = spec
        self.name = spec.name
        self.sha256 = spec.sha256
        self.add_bos, self.add_eos = spec.add_bos, spec.add_eos
        self.bos_id = self._special(spec.bos_token, self._default_bos())
        self.eos_id = self._special(spec.eos_token, self._default_eos())
        self.pad_id = self._special(spec.pad_token, self._default_pad())
        for wanted, token_id, what in (
            (self.add_bos, self.bos_id, "bos"),
            (self.add_eos, self.eos_id, "eos"),
        ):
            if wanted and token_id is None:
                raise TokenizerError(
                    f"tokenizer.add_{what}: {self.name!r} has no {what.upper()} token; set "
                    f"tokenizer.{what}_token or tokenizer.add_{what}=false"
                )

    @property
    @abstractmethod
    def vocab_size(self) -> int: ...

    @abstractmethod
    def encode_plain(self, texts: list[str]) -> list[list[int]]:
        """Token ids of each text, no special tokens added."""

    @abstractmethod
    def decode(self, ids: Iterable[int]) -> str: ...

    @abstractmethod
    def token_id(self, token: str) -> int | None: ...

    @abstractmethod
    def _default_bos(self) -> int | None: ...

    @abstractmethod
    def _default_eos(self) -> int | None: ...

    @abstractmethod
    def _default_pad(self) -> int | None: ...

    def _special(self, token: str | None, default: int | None) -> int | None:
        if token is None:
            return default
        token_id = self.token_id(token)
        if token_id is None:
            raise TokenizerError(f"special token {token!r} is not in {self.name!r}'s vocabulary")
        return token_id

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        """Token ids of each text, with BOS first and EOS last when add_bos / add_eos."""
        head = [self.bos_id] if self.add_bos else []
        tail = [self.eos_id] if self.add_eos else []
        return [head + ids + tail for ids in self.encode_plain(texts)]

    @property
    def n_special_added(self) -> int:
        """Tokens encode_batch adds to every document (BOS and/or EOS)."""
        return int(self.add_bos) + int(self.add_eos)

    def info(self) -> dict[str, Any]:
        """The manifest's tokenizer block."""
        return {
            "kind": self.kind,
            "name": self.name,
            "sha256": self.sha256,
            "source": self.spec.source,
            "vocab_size": self.vocab_size,
            "bos_id": self.bos_id,
            "eos_id": self.eos_id,
            "pad_id": self.pad_id,
            "add_bos": self.add_bos,
            "add_eos": self.add_eos,
        }


class SentencePieceTokenizer(Tokenizer):
    kind = SENTENCEPIECE

    def __init__(self, spec: TokenizerSpec, num_threads: int = 1):
        import sentencepiece as spm

        # One thread: Ray runs one tokenizer per CPU already.
        self.num_threads = num_threads
        self.sp = spm.SentencePieceProcessor(model_proto=spec.data)
        super().__init__(spec)

    @property
    def vocab_size(self) -> int:
        return self.sp.get_piece_size()

    def encode_plain(self, texts: list[str]) -> list[list[int]]:
        return self.sp.encode(texts, out_type=int, num_threads=self.num_threads)

    def decode(self, ids: Iterable[int]) -> str:
        return self.sp.decode(list(ids))

    def token_id(self, token: str) -> int | None:
        token_id = self.sp.piece_to_id(token)  # the unk id for an unknown piece
        return token_id if self.sp.id_to_piece(token_id) == token else None

    def _default_bos(self) -> int | None:
        return _defined(self.sp.bos_id())

    def _default_eos(self) -> int | None:
        return _defined(self.sp.eos_id())

    def _default_pad(self) -> int | None:
        return _defined(self.sp.pad_id())


class HFTokenizer(Tokenizer):
    kind = HF

    def __init__(self, spec: TokenizerSpec):
        from tokenizers import Tokenizer as RustTokenizer

        self.tok = RustTokenizer.from_str(spec.data.decode("utf-8"))
        # encode_batch_fast (tokenizers >= 0.21) skips the character offsets encode_batch
        # tracks: the same ids, less work. Older versions only have encode_batch.
        self._encode = getattr(self.tok, "encode_batch_fast", self.tok.encode_batch)
        super().__init__(spec)

    @property
    def vocab_size(self) -> int:
        return self.tok.get_vocab_size(with_added_tokens=True)

    def encode_plain(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self._encode(texts, add_special_tokens=False)]

    def decode(self, ids: Iterable[int]) -> str:
        return self.tok.decode(list(ids), skip_special_tokens=False)

    def token_id(self, token: str) -> int | None:
        return self.tok.token_to_id(token)

    # tokenizer.json does not say which token is BOS/EOS: that comes from the spec.
    def _default_bos(self) -> int | None:
        return None

    def _default_eos(self) -> int | None:
        return None

    def _default_pad(self) -> int | None:
        return None


def _defined(token_id: int) -> int | None:
    return None if token_id < 0 else token_id


def load_tokenizer(spec: TokenizerSpec) -> Tokenizer:
    """Build the tokenizer a spec describes (raises TokenizerError for a bad file)."""
    try:
        if spec.kind == SENTENCEPIECE:
            return SentencePieceTokenizer(spec)
        if spec.kind == HF:
            return HFTokenizer(spec)
    except TokenizerError:
        raise
    except Exception as err:  # each library raises its own types for a bad file
        raise TokenizerError(
            f"{spec.source}: cannot load as a {spec.kind} tokenizer: {err}"
        ) from err
    raise TokenizerError(f"tokenizer kind {spec.kind!r} not in {KINDS}")
