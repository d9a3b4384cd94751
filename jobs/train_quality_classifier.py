"""Train the fastText quality classifier from labelled JSONL and report held-out accuracy.

Each input line is {"text": "...", "label": "hq"} (any label names; two or more). A
deterministic share of the rows (by a hash of the text) is held out; the model trains on the
rest and the report gives accuracy and per-label precision/recall on the held-out rows.

    python jobs/train_quality_classifier.py --data labels.jsonl --out .cache/quality/hq.bin
    python jobs/train_quality_classifier.py --data labels.jsonl --out hq.bin --heldout 0.2 \
        --epoch 25 --word-ngrams 2
    python jobs/run.py quality.classifier.path=.cache/quality/hq.bin   # then use it

On a Ray cluster the same script runs on the head (training is single-threaded fastText):
    ray job submit --address http://127.0.0.1:8265 --working-dir . -- \
        python jobs/train_quality_classifier.py --data labels.jsonl --out hq.bin

The report is printed and written next to the model as <out>.report.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pipeline.quality.classifier import evaluate, split_rows, train_classifier


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument("--data", type=Path, required=True, help="labelled JSONL (text, label)")
    parser.add_argument("--out", type=Path, required=True, help="where to save the model")
    parser.add_argument("--heldout", type=float, default=0.2, help="held-out share (0.2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epoch", type=int, default=25)
    parser.add_argument("--lr", type=float, default=0.5)
    parser.add_argument("--word-ngrams", type=int, default=2)
    parser.add_argument("--dim", type=int, default=50)
    return parser.parse_args(argv)


def read_labelled(path: Path) -> list[dict]:
    rows = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{number}: not JSON ({e.msg})") from None
            if not isinstance(row, dict) or not isinstance(row.get("text"), str):
                raise ValueError(f"{path}:{number}: want an object with a string 'text'")
            if row.get("label") in (None, ""):
                raise ValueError(f"{path}:{number}: no 'label'")
            rows.append({"text": row["text"], "label": str(row["label"])})
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not 0 < args.heldout < 1:
        print(f"error: --heldout must be in (0, 1), got {args.heldout}", file=sys.stderr)
        return 2
    try:
        rows = read_labelled(args.data)
        train, heldout = split_rows(rows, args.heldout, args.seed)
        if not heldout:
            raise ValueError(f"no held-out rows out of {len(rows)}: add data or raise --heldout")
        model = train_classifier(
            train,
            args.out,
            epoch=args.epoch,
            lr=args.lr,
            word_ngrams=args.word_ngrams,
            dim=args.dim,
            seed=args.seed,
        )
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    report = {
        "model": str(args.out),
        "data": str(args.data),
        "train_rows": len(train),
        "labels": model.labels,
        "heldout": evaluate(model, heldout),
        "train": evaluate(model, train),
    }
    report_path = args.out.with_name(args.out.name + ".report.json")
    report_path.write_text(json.dumps(report, indent=1) + "\n")
    held = report["heldout"]
    print(f"trained on {len(train)} rows; held-out accuracy {held['accuracy']} on {held['n']}")
    for label, s in held["by_label"].items():
        print(f"  {label}: n={s['n']} precision={s['precision']} recall={s['recall']}")
    print(f"model: {args.out}\nreport: {report_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
