"""The one exception a wrong configuration raises: its message starts with the key's dotted path.

raise ConfigError("dedup.threshold: must be in (0, 1), got 1.5")
"""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration value is wrong; the message starts with the key's dotted path."""
