"""The README documents every configuration key (environment, tower, operations, API, pipeline)."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel

from hf_towers.config.models import EnvironmentConfig
from hf_towers.config.pipeline import PipelineConfig

README = Path(__file__).resolve().parent.parent / "README.md"


def _keys(model: type[BaseModel], prefix: str = "") -> set[str]:
    """Dotted paths of the leaf keys of ``model`` (sections are documented by their keys)."""
    keys: set[str] = set()
    for name, field in model.model_fields.items():
        annotation = field.annotation
        candidates = getattr(annotation, "__args__", (annotation,))
        sections = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
        for section in sections:
            keys |= _keys(section, f"{prefix}{name}.")
        if not sections:
            keys.add(f"{prefix}{name}")
    return keys


def test_every_config_key_is_in_the_readme() -> None:
    text = README.read_text()
    documented = set(re.findall(r"`([a-z_][a-z0-9_.]*)`", text))
    keys = _keys(EnvironmentConfig) | _keys(PipelineConfig)

    # A nested key counts as documented by any dotted suffix of its path: in full
    # (`towers.rollout.strategy`), from its section (`rollout.strategy`), or in its section's
    # table (`strategy`).
    def suffixes(key: str) -> set[str]:
        parts = key.split(".")
        return {".".join(parts[i:]) for i in range(len(parts))}

    missing = sorted(k for k in keys if not suffixes(k) & documented)
    assert missing == []
