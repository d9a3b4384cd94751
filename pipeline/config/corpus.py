"""The `corpus` group (conf/corpus/): the sources to read, their format and normalisation."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from omegaconf import MISSING

from pipeline.config.ranges import Checked, positive


class ReaderFormat(StrEnum):
    auto = "auto"  # by extension (.jsonl[.gz|.zst], .parquet, .txt)
    jsonl = "jsonl"
    parquet = "parquet"
    text = "text"


@dataclass
class SourceConfig(Checked):
    # Glob patterns (recursive ** allowed), relative to the directory the job starts in.
    paths: list[str] = MISSING
    # auto: by extension (.jsonl[.gz|.zst], .parquet, .txt)
    format: ReaderFormat = ReaderFormat.auto
    text_field: str = "text"
    # Field holding the record key; records without one get a content-hash id.
    id_field: str | None = "id"
    # Mixture weight, carried on every row to tokenization and the loader.
    weight: float = 1.0
    # false: the rewrite stage leaves this source raw (it is still deduplicated, filtered and
    # tokenized). For text the rewriting model cannot handle, e.g. verse in old spelling.
    rewrite: bool = True

    def problems(self) -> list[str]:
        return positive(self, "weight") + ([] if self.paths else ["paths: no path given"])


@dataclass
class NormalizeConfig:
    nfc: bool = True  # Unicode NFC: one byte sequence per visible string, so hashes agree
    newlines: bool = True  # CRLF / CR -> LF
    control_chars: bool = True  # C0/C1 controls except tab and newline
    strip: bool = True  # leading/trailing whitespace of the whole document


@dataclass
class CorpusConfig(Checked):
    name: str = MISSING
    sources: dict[str, SourceConfig] = field(default_factory=dict)
    # Larger documents are quarantined as too_large. 2 MB holds any play or book chapter
    # while keeping one record far below a worker's memory.
    max_doc_bytes: int = 2_000_000
    # Rows per Arrow batch handed downstream: bounds a reader's memory independent of file size.
    batch_rows: int = 1024
    normalize: NormalizeConfig = field(default_factory=NormalizeConfig)

    def problems(self) -> list[str]:
        # Source names are path components: checked with the run name (pipeline/security.py).
        return positive(self, "max_doc_bytes", "batch_rows")
