"""Which properties of a CloudFormation resource type force a replacement when they change.

The registry schema of every resource type lists ``createOnlyProperties`` as JSON pointers
(``/properties/BucketName``, ``/properties/VpcConfig/SubnetIds``,
``/properties/Items/*/Name``); changing such a value makes CloudFormation create a new
resource and delete the old one. cfn-lint ships those schemas, so the lookup needs neither AWS
credentials nor network. Two layouts are understood:

* cfn-lint >= 1.2x: ``data/schemas/providers/<region>.json`` maps each type name to a hash and
  ``data/schemas/resources/<hash>.json`` is the schema;
* older releases: ``data/schemas/providers/<region_with_underscores>/<aws-svc-type>.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import cfnlint

# Schemas differ little between regions; us-east-1 has every type first.
DEFAULT_REGION = "us-east-1"

# A JSON pointer below /properties, split into segments; "*" stands for every array item.
PropertyPath = tuple[str, ...]


@dataclass(frozen=True)
class TypeSchema:
    """What the replacement prediction needs from one resource type's schema."""

    type_name: str
    create_only: tuple[PropertyPath, ...]
    conditional_create_only: tuple[PropertyPath, ...]
    primary_identifier: tuple[PropertyPath, ...]


def schemas_root() -> Path:
    """The ``data/schemas`` directory of the installed cfn-lint."""
    return Path(cfnlint.__file__).parent / "data" / "schemas"


def _parse_pointer(pointer: str) -> PropertyPath | None:
    """``/properties/A/B`` -> ``("A", "B")``; None for pointers outside ``/properties``."""
    parts = pointer.strip("/").split("/")
    if len(parts) < 2 or parts[0] != "properties":
        return None
    # JSON pointer escapes (~1 for "/", ~0 for "~") are not used by property names, but cheap.
    return tuple(part.replace("~1", "/").replace("~0", "~") for part in parts[1:])


def _paths(schema: dict[str, Any], key: str) -> tuple[PropertyPath, ...]:
    parsed = (_parse_pointer(pointer) for pointer in schema.get(key, ()))
    return tuple(path for path in parsed if path is not None)


@cache
def _hashed_index(region: str) -> dict[str, str]:
    """Type name -> schema file stem, from the hashed layout; empty when absent."""
    index_file = schemas_root() / "providers" / f"{region}.json"
    if not index_file.is_file():
        return {}
    data = json.loads(index_file.read_text(encoding="utf-8"))
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _schema_file(type_name: str, region: str) -> Path | None:
    root = schemas_root()
    stem = _hashed_index(region).get(type_name)
    if stem is not None:
        hashed = root / "resources" / f"{stem}.json"
        if hashed.is_file():
            return hashed
    legacy = (
        root
        / "providers"
        / region.replace("-", "_")
        / (type_name.replace("::", "-").lower() + ".json")
    )
    return legacy if legacy.is_file() else None


@cache
def type_schema(type_name: str, region: str = DEFAULT_REGION) -> TypeSchema | None:
    """The schema facts of ``type_name`` (e.g. ``AWS::S3::Bucket``); None when cfn-lint has no
    schema for it (custom resources, ``AWS::CDK::Metadata``, unknown types)."""
    path = _schema_file(type_name, region)
    if path is None:
        return None
    schema = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(schema, dict):
        return None
    return TypeSchema(
        type_name=type_name,
        create_only=_paths(schema, "createOnlyProperties"),
        conditional_create_only=_paths(schema, "conditionalCreateOnlyProperties"),
        primary_identifier=_paths(schema, "primaryIdentifier"),
    )


def create_only_paths(type_name: str, region: str = DEFAULT_REGION) -> tuple[PropertyPath, ...]:
    """The create-only property paths of ``type_name``; empty when unknown."""
    schema = type_schema(type_name, region)
    return schema.create_only if schema is not None else ()


def is_create_only(type_name: str, path: str | PropertyPath, region: str = DEFAULT_REGION) -> bool:
    """True when changing the property at ``path`` (``"VpcConfig/SubnetIds"`` or a tuple)
    replaces the resource: the path is create-only itself, or lies under a create-only object
    (any change inside ``/properties/VpcConfig`` counts when ``VpcConfig`` is create-only).
    Array indices in ``path`` match ``*`` in the schema."""
    segments = tuple(path.split("/")) if isinstance(path, str) else path
    for pattern in create_only_paths(type_name, region):
        if len(pattern) <= len(segments) and all(
            want in ("*", got) for want, got in zip(pattern, segments, strict=False)
        ):
            return True
    return False
