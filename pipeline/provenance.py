"""From a token-shard row back to its source: lineage row, document text, chunks, prompt, model.

The tokenize stage writes a lineage table beside the shards (pipeline/tokens/lineage.py):
row i of lineage/<shard>.parquet describes row i of the shard. This module joins a lineage
row with the rest of the run directory: the source document's text (from the stages that
hold documents, latest first), the rewrite row (rewrite or fidelity output) and the prompt
template (from the run's saved config.yaml, rewrite.prompts, else the built-in set in
conf/prompts/default.yaml; either checked against the recorded prompt hash). `pipeline.run_view.Run`
wraps it:

    run = Run("outputs/demo")
    run.lineage("shard-00000.arrow", 17)        # the lineage row (a dict)
    t = run.trace("shard-00000.arrow", 17)      # a Trace
    t.source_text, t.chunks[0]["text"], t.prompt["instruction"], t.model, t.model_hash
    run.locate("wiki/42#qa")                    # [("shard-00003.arrow", 5)]
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from omegaconf import OmegaConf

from pipeline import schema as S
from pipeline.config.prompts import PromptConfig, builtin_prompts
from pipeline.rewrite.prompts import PromptTemplate, build_messages, get_template
from pipeline.token_shards.files import SPLITS
from pipeline.token_shards.manifest import read_manifest
from pipeline.tokens.lineage import read_lineage
from pipeline.tokens.tokenizers import Tokenizer, load_tokenizer, spec_from_file

SHARD = "shard"  # columns added to the run-wide lineage table: the shard file ...
ROW = "row"  # ... and the row in it


@dataclass
class Trace:
    """One shard row traced back. Rewrite-only fields are None for a raw document."""

    shard: str
    row: int
    lineage: dict[str, Any]  # the lineage row as written (schema.LINEAGE_SCHEMA)
    source_text: str | None  # the whole source document (None if no stage holds it)
    source_path: str | None  # the input file and location of the source document
    source_location: int | None
    chunks: list[dict[str, Any]] = field(default_factory=list)  # index, start, end, text
    # id, hash, instruction, examples, found_in, hash_matches, messages (the first chunk's chat)
    prompt: dict[str, Any] | None = None
    sampling: dict[str, Any] | None = None
    rewrite_text: str | None = None  # the rewrite row's text (what the tokens decode to)

    @property
    def doc_id(self) -> str:
        return self.lineage[S.DOC_ID]

    @property
    def kind(self) -> str:
        return self.lineage[S.KIND]

    @property
    def model(self) -> str | None:
        return self.lineage[S.MODEL]

    @property
    def model_hash(self) -> str | None:
        return self.lineage[S.MODEL_HASH]


class Provenance:
    """Lineage lookups over one run directory (files read once, then kept)."""

    def __init__(self, run_dir: Path, stage_names: list[str]):
        self.run_dir = Path(run_dir)
        self.shard_dir = self.run_dir / "tokenize" / "data"
        self.stage_names = stage_names
        self._manifest: dict | None = None
        self._tables: dict[str, pa.Table] = {}
        self._with_column: dict[str, list[str]] = {}
        self._tokenizer: Tokenizer | None = None
        self._config: dict | None = None

    @property
    def manifest(self) -> dict:
        if self._manifest is None:
            self._manifest = read_manifest(self.shard_dir)
        return self._manifest

    def shards(self) -> list[str]:
        """Every shard file, training split first."""
        splits = self.manifest["splits"]
        return [s["file"] for split in SPLITS for s in splits[split]["shards"]]

    def table(self, shard: str) -> pa.Table:
        """One shard's lineage table (sha256 checked against the manifest on first read)."""
        if shard not in self._tables:
            self._tables[shard] = read_lineage(self.shard_dir, self.manifest, shard)
        return self._tables[shard]

    def all(self) -> pa.Table:
        """Every shard's lineage, with SHARD and ROW columns in front."""
        tables = []
        for shard in self.shards():
            t = self.table(shard)
            tables.append(
                t.add_column(0, ROW, pa.array(range(t.num_rows), pa.int64())).add_column(
                    0, SHARD, pa.array([shard] * t.num_rows, pa.string())
                )
            )
        if not tables:
            empty = S.LINEAGE_SCHEMA.empty_table()
            return empty.add_column(0, ROW, pa.array([], pa.int64())).add_column(
                0, SHARD, pa.array([], pa.string())
            )
        return pa.concat_tables(tables)

    def row(self, shard: str, row: int) -> dict[str, Any]:
        table = self.table(shard)
        if not 0 <= row < table.num_rows:
            raise IndexError(f"{shard} has rows 0..{table.num_rows - 1}, not {row}")
        return table.slice(row, 1).to_pylist()[0]

    def locate(self, doc_id: str) -> list[tuple[str, int]]:
        """(shard, row) of every shard row with this doc_id (a rewrite's is its rewrite_id)."""
        return [
            (shard, i)
            for shard in self.shards()
            for i, d in enumerate(self.table(shard)[S.DOC_ID].to_pylist())
            if d == doc_id
        ]

    def decode(self, tokens: list[int]) -> str:
        """Token ids as text, with the tokenizer the shards were made with (the copy in
        <run>/tokenize/tokenizer/); BOS and EOS are left out."""
        if self._tokenizer is None:
            info = self.manifest["tokenizer"]
            path = (self.shard_dir / info["file"]).resolve()
            # Decoding adds no special token: the copy need not say which are BOS/EOS (an HF
            # tokenizer.json alone does not), the manifest's ids are dropped below.
            spec = spec_from_file(
                info["kind"], str(path), info["name"], add_bos=False, add_eos=False
            )
            self._tokenizer = load_tokenizer(spec)
        special = {self.manifest["tokenizer"].get(k) for k in ("bos_id", "eos_id")}
        return self._tokenizer.decode([t for t in tokens if t not in special])

    def trace(self, shard: str, row: int) -> Trace:
        lineage = self.row(shard, row)
        doc = self.document(lineage[S.SOURCE_DOC_ID]) or {}
        text = doc.get(S.TEXT)
        trace = Trace(
            shard=shard,
            row=row,
            lineage=lineage,
            source_text=text,
            source_path=lineage[S.PATH] or doc.get(S.PATH),
            source_location=(
                lineage[S.LOCATION] if lineage[S.PATH] is not None else doc.get(S.LOCATION)
            ),
        )
        if lineage[S.KIND] != S.KIND_REWRITE:
            return trace
        trace.chunks = [
            {**span, "text": text[span["start"] : span["end"]] if text is not None else None}
            for span in lineage[S.CHUNK_SPANS] or []
        ]
        first = trace.chunks[0]["text"] if trace.chunks else None
        trace.prompt = self.prompt(
            lineage[S.PROMPT_ID], lineage[S.PROMPT_HASH], lineage[S.STYLE], first
        )
        trace.sampling = json.loads(lineage[S.SAMPLING]) if lineage[S.SAMPLING] else None
        rewrite = self._find(self._stages_with(S.REWRITE_ID), S.REWRITE_ID, lineage[S.DOC_ID])
        trace.rewrite_text = rewrite.get(S.TEXT) if rewrite else None
        return trace

    # --- the rest of the run directory ------------------------------------------------------

    def document(self, doc_id: str) -> dict[str, Any] | None:
        """The source document's row (text, path, location) from the latest stage holding
        documents that has it: filters keep the text as ingest normalised it."""
        docs = [s for s in self._stages_with(S.TEXT) if s not in self._stages_with(S.REWRITE_ID)]
        return self._find(docs, S.DOC_ID, doc_id, [S.DOC_ID, S.TEXT, S.PATH, S.LOCATION])

    def prompt(
        self, prompt_id: str, prompt_hash: str, style: str | None, chunk_text: str | None = None
    ) -> dict[str, Any]:
        """The template the rewrite used, found by its `<id>@v<version>`: in the run's saved
        config (rewrite.prompts, what the actors rendered), else in the built-in set
        (conf/prompts/default.yaml). `hash_matches` says whether the template found hashes to
        the recorded prompt_hash (False: it changed since; runs from before the templates
        moved to YAML hashed the instruction alone). `messages`: the chat for `chunk_text`
        as the first chunk (no context), few-shot turns included."""
        found = {"id": prompt_id, "hash": prompt_hash, "instruction": None, "found_in": None}
        for where, template in self._templates(style):
            if template.key == prompt_id:
                messages = None
                if chunk_text is not None:
                    messages = build_messages(template, chunk_text, system_role=self._system())
                return {
                    **found,
                    "instruction": template.instruction,
                    "examples": len(template.examples),
                    "found_in": where,
                    "hash_matches": template.content_hash == prompt_hash,
                    "messages": messages,
                }
        return {**found, "hash_matches": False}

    def _saved_config(self) -> dict:
        if self._config is None:
            path = self.run_dir / "config.yaml"
            self._config = (yaml.safe_load(path.read_text()) or {}) if path.is_file() else {}
        return self._config

    def _system(self) -> bool:
        return bool((self._saved_config().get("model") or {}).get("chat_template_has_system", True))

    def _templates(self, style: str | None) -> Iterator[tuple[str, PromptTemplate]]:
        saved = (self._saved_config().get("rewrite") or {}).get("prompts") or {}
        # The row's style first: its template is the one keyed by it, unless renamed.
        for name in sorted(saved, key=lambda n: n != style):
            entry = OmegaConf.merge(OmegaConf.structured(PromptConfig), saved[name])
            template = PromptTemplate.from_config(name, OmegaConf.to_object(entry))
            yield f"config.yaml: rewrite.prompts.{name}", template
        builtin = builtin_prompts()
        for name in sorted(builtin, key=lambda n: n != style):
            yield f"conf/prompts/default.yaml (built-in): {name}", get_template(name, builtin)

    def _stages_with(self, column: str) -> list[str]:
        """The run's stages whose data has `column`, latest first."""
        if column not in self._with_column:
            found = []
            for name in reversed(self.stage_names):
                parts = sorted((self.run_dir / name / "data").glob("*.parquet"))
                if parts and column in pq.read_schema(parts[0]).names:
                    found.append(name)
            self._with_column[column] = found
        return self._with_column[column]

    def _find(
        self, stages: list[str], key: str, value: str, columns: list[str] | None = None
    ) -> dict[str, Any] | None:
        for name in stages:
            for part in sorted((self.run_dir / name / "data").glob("*.parquet")):
                present = pq.read_schema(part).names
                wanted = None if columns is None else [c for c in columns if c in present]
                hit = pq.read_table(part, columns=wanted, filters=[(key, "=", value)])
                if hit.num_rows:
                    return hit.slice(0, 1).to_pylist()[0]
        return None
