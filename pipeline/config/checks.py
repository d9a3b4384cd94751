"""`validate`: the checks that span keys of several groups, before any work starts.

A value out of range or not among a field's choices never gets this far: its dataclass refuses
it when `to_config` builds it (pipeline/config/ranges.py). What is left here is what no single
dataclass can tell: the stages named exist, the chosen styles have templates, per-style keys
name known styles; and the security rules, on the config as it is run (names that become
paths, no `_target_` or remote-code switch hidden in the tree).

    from pipeline.config import validate
    validate(cfg, stage_names)   # raises ConfigError("rewrite.styles: unknown style 'poem'...")
"""

from __future__ import annotations

from pipeline.config.errors import ConfigError
from pipeline.config.prompts import prompt_problems
from pipeline.config.root import Config
from pipeline.security import name_problems, security_problems


def validate(cfg: Config, stage_names: tuple[str, ...] | list[str] = ()) -> None:
    """Raise ConfigError listing every wrong key, one per line."""
    problems = [
        f"run.stages: unknown stage {stage!r}; known: {tuple(stage_names)}"
        for stage in (cfg.run.stages if stage_names else ())
        if stage not in stage_names
    ]
    # A Config built in code starts with no source; a job must name one.
    if not cfg.corpus.sources:
        problems.append("corpus.sources: no source configured")
    problems += prompt_problems(cfg.rewrite.prompts, cfg.rewrite.styles)
    problems += [
        f"fidelity.length_ratio_by_style.{style}: unknown style"
        for style in cfg.fidelity.length_ratio_by_style
        if style not in cfg.rewrite.prompts
    ]
    problems += name_problems(cfg) + security_problems(cfg)
    if problems:
        raise ConfigError("\n".join(problems))
