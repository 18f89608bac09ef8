"""Typed, validated configuration: ``load_config(path)`` returns an ``EnvironmentConfig``."""

from hf_towers.config.loader import ConfigError, load_config, parse_config
from hf_towers.config.models import EnvironmentConfig, RemovalPolicy, Tower, TowerKind

__all__ = [
    "ConfigError",
    "EnvironmentConfig",
    "RemovalPolicy",
    "Tower",
    "TowerKind",
    "load_config",
    "parse_config",
]
