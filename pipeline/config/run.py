"""`run.*` (conf/config.yaml): the run's name and directory, its stages, resume and progress."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class RunConfig:
    # The run directory is <output_root>/<name>; rerunning the same name resumes it.
    name: str = "${now:%Y%m%d-%H%M%S}"
    output_root: str = "outputs"
    stages: list[str] = field(
        default_factory=lambda: ["ingest", "dedup", "quality", "rewrite", "fidelity", "tokenize"]
    )
    resume: bool = True
    progress: bool = True
