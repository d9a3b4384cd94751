"""Run every benchmark under bench/ and write BENCHMARKS.md (what `make bench` does).

    python bench/report.py                  # all of them, ~45 min on a 2-core machine
    python bench/report.py --only dedup rewrite
    python bench/report.py --quick          # smoke sizes where a benchmark has them

Each benchmark runs in its own process, one after another, and prints its own table of
side-by-side ratios measured in that same run; this script collects those tables and every
goal (from each benchmark's --json output) into one file, with the machine's load before
and after each run, since absolute times on a shared machine are not stable.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# name, script, extra arguments, extra arguments for --quick
BENCHES = [
    ("dedup", "bench/dedup.py", [], ["--quick"]),
    ("dedup_scale", "bench/dedup_scale.py", [], ["--quick"]),
    ("rewrite", "bench/rewrite.py", [], ["--docs", "8", "--max-tokens", "48"]),
    ("tokenize_load", "bench/tokenize_load.py", [], ["--copies", "1"]),
    ("quality_vs_datatrove", "bench/quality_vs_datatrove.py", [], ["--quick"]),
    ("end_to_end", "bench/end_to_end.py", [], ["--quick"]),
    ("scale", "bench/scale.py", [], ["--quick"]),
]


def run_bench(name: str, script: str, extra: list[str], work: Path) -> dict:
    out = work / f"{name}.json"
    command = [sys.executable, script, "--json", str(out), *extra]
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    print(f"{name}: rc {proc.returncode} in {seconds:.0f} s", flush=True)
    result = json.loads(out.read_text()) if out.exists() else {}
    return {
        "name": name,
        "command": " ".join(["python", script, *extra]),
        "rc": proc.returncode,
        "seconds": seconds,
        "load": (load_before, os.getloadavg()[0]),
        "stdout": proc.stdout.strip(),
        "stderr_tail": "\n".join(proc.stderr.strip().splitlines()[-15:]),
        "goals": result.get("goals", []),
    }


def markdown(results: list[dict], quick: bool) -> str:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Benchmarks",
        "",
        f"Written by `make bench` (`bench/report.py{' --quick' if quick else ''}`) on {now}, "
        f"commit {commit}, {os.cpu_count()} cores. Every ratio compares two sides measured "
        "in the same run; absolute times on a shared machine are noisy (the load average "
        "before and after each benchmark is shown).",
        "",
        "## Goals",
        "",
        "| benchmark | measure | measured | goal | met |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        for g in r["goals"]:
            met = "yes" if g["met"] else "**no**"
            lines.append(f"| {r['name']} | {g['name']} | {g['measured']} | {g['goal']} | {met} |")
    for r in results:
        lines += [
            "",
            f"## {r['name']}",
            "",
            f"`{r['command']}`: exit {r['rc']}, {r['seconds']:.0f} s, "
            f"load average {r['load'][0]:.1f} before, {r['load'][1]:.1f} after.",
            "",
            "```",
            r["stdout"] or "(no output)",
            "```",
        ]
        if r["rc"]:
            lines += ["", "stderr (last lines):", "", "```", r["stderr_tail"], "```"]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="*", help="names: " + " ".join(b[0] for b in BENCHES))
    parser.add_argument("--quick", action="store_true", help="smoke sizes")
    parser.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        for name, script, extra, quick_extra in BENCHES:
            if args.only and name not in args.only:
                continue
            results.append(run_bench(name, script, quick_extra if args.quick else extra, Path(tmp)))
    args.out.write_text(markdown(results, args.quick))
    print(f"wrote {args.out}")
    sys.exit(1 if any(r["rc"] for r in results) else 0)


if __name__ == "__main__":
    main()
