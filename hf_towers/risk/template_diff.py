"""Compare two synthesized CloudFormation templates resource by resource.

Each resource present in either template becomes a ``ResourceChange`` of kind added, removed,
modified or replaced (unchanged ones are dropped). Replacement is predicted the way
CloudFormation decides it:

* a create-only property (from the resource type's schema, see ``schemas``) has a different
  value, compared as JSON, so CDK tokens (``{"Ref": ...}``, ``{"Fn::GetAtt": [...]}``) compare
  structurally; a change anywhere under a create-only object counts;
* the resource type behind a logical ID changed;
* a create-only property refers (``Ref``, ``Fn::GetAtt``, ``Fn::Sub``) to a resource that is
  itself replaced: its new physical ID or ARN is a new value at deploy time, so the replacement
  cascades (a replaced Model replaces the EndpointConfig naming it). A resource referring to a
  replaced one only through updatable properties is reported as modified.

``Metadata`` and ``DependsOn`` do not change a deployed resource and are ignored, as are
``AWS::CDK::Metadata`` resources. Types without a schema (custom resources) are never predicted
as replaced; ``ResourceChange.schema_known`` says so.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from hf_towers.risk.schemas import PropertyPath, create_only_paths, type_schema

Template = Mapping[str, Any]

IGNORED_TYPES = frozenset({"AWS::CDK::Metadata"})
# Resource attributes that CloudFormation applies on update (Metadata/DependsOn do not).
COMPARED_ATTRIBUTES = (
    "DeletionPolicy",
    "UpdateReplacePolicy",
    "Condition",
    "UpdatePolicy",
    "CreationPolicy",
)


class ChangeKind(StrEnum):
    ADDED = "added"
    REMOVED = "removed"
    MODIFIED = "modified"
    REPLACED = "replaced"


@dataclass(frozen=True)
class ResourceChange:
    """One resource that differs between the base and the new template of a stack."""

    stack: str
    logical_id: str
    resource_type: str
    kind: ChangeKind
    old: Mapping[str, Any] | None
    new: Mapping[str, Any] | None
    # Changed paths: "Properties/BucketName", "Properties/PolicyDocument/Statement/0", ...
    changed_paths: tuple[str, ...] = ()
    # Create-only property paths whose value changed ("BucketName", "VpcConfig/SubnetIds").
    create_only_changed: tuple[str, ...] = ()
    # Why the resource is replaced, in words.
    replacement_reasons: tuple[str, ...] = ()
    schema_known: bool = True
    # Conditionally create-only paths that changed: replacement depends on the values.
    may_replace: tuple[str, ...] = ()
    # Other facts worth a reader's eye (an update caused by a replaced dependency).
    notes: tuple[str, ...] = ()

    @property
    def old_properties(self) -> Mapping[str, Any]:
        return _properties(self.old)

    @property
    def new_properties(self) -> Mapping[str, Any]:
        return _properties(self.new)


@dataclass(frozen=True)
class StackDiff:
    """All resource changes of one stack; ``status`` is added/removed/changed/unchanged."""

    stack: str
    status: str
    changes: tuple[ResourceChange, ...] = field(default=())

    def count(self, kind: ChangeKind) -> int:
        return sum(1 for change in self.changes if change.kind is kind)


def _properties(resource: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if resource is None:
        return {}
    props = resource.get("Properties", {})
    return props if isinstance(props, Mapping) else {}


def _resources(template: Template | None) -> dict[str, Mapping[str, Any]]:
    if template is None:
        return {}
    resources = template.get("Resources", {})
    if not isinstance(resources, Mapping):
        return {}
    return {
        str(logical_id): resource
        for logical_id, resource in resources.items()
        if isinstance(resource, Mapping) and resource.get("Type") not in IGNORED_TYPES
    }


def _is_intrinsic(value: Any) -> bool:
    """``{"Ref": ...}`` or ``{"Fn::X": ...}``: a token compared as a whole."""
    if not isinstance(value, Mapping) or len(value) != 1:
        return False
    key = str(next(iter(value)))
    return key == "Ref" or key.startswith("Fn::")


def changed_paths(old: Any, new: Any, prefix: str = "") -> list[str]:
    """The paths (``"A/B/0"``) at which two JSON values differ, as deep as both sides allow:
    objects recurse per key, equal-length arrays per index, anything else (intrinsics, scalars,
    arrays of different length) is one leaf."""
    if old == new:
        return []
    if (
        isinstance(old, Mapping)
        and isinstance(new, Mapping)
        and not _is_intrinsic(old)
        and not _is_intrinsic(new)
    ):
        paths: list[str] = []
        for key in sorted(set(old) | set(new), key=str):
            child = f"{prefix}/{key}" if prefix else str(key)
            paths.extend(changed_paths(old.get(key, _MISSING), new.get(key, _MISSING), child))
        return paths
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        paths = []
        for index, (old_item, new_item) in enumerate(zip(old, new, strict=True)):
            paths.extend(
                changed_paths(old_item, new_item, f"{prefix}/{index}" if prefix else str(index))
            )
        return paths
    return [prefix]


class _Missing:
    """Stands for an absent key; equal only to itself."""

    def __repr__(self) -> str:
        return "<missing>"


_MISSING: Any = _Missing()
MISSING: Any = _MISSING


def is_missing(value: Any) -> bool:
    """True for the marker ``value_at`` gives for an absent key."""
    return value is _MISSING


def value_at(value: Any, path: PropertyPath) -> Any:
    """The value at ``path`` below ``value``; ``*`` maps over array items (giving a list);
    an absent key gives the missing marker, so absent and present compare different."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if head == "*":
        if isinstance(value, list):
            return [value_at(item, rest) for item in value]
        return _MISSING
    if isinstance(value, Mapping) and not _is_intrinsic(value):
        return value_at(value[head], rest) if head in value else _MISSING
    if isinstance(value, Mapping):
        # An intrinsic stands where an object is expected (e.g. Fn::If): the whole token is the
        # value, so any change to it counts as a change of the nested create-only property.
        return value
    return _MISSING


_SUB_REFERENCE = re.compile(r"\$\{(?!!)([A-Za-z0-9]+)(?:\.[^}]*)?\}")


def references(value: Any) -> Iterator[str]:
    """Logical IDs that ``value`` refers to through ``Ref``, ``Fn::GetAtt`` or ``Fn::Sub``."""
    if isinstance(value, list):
        for item in value:
            yield from references(item)
        return
    if not isinstance(value, Mapping):
        return
    for key, inner in value.items():
        if key == "Ref" and isinstance(inner, str):
            yield inner
        elif key == "Fn::GetAtt":
            if isinstance(inner, list) and inner and isinstance(inner[0], str):
                yield inner[0]
            elif isinstance(inner, str):
                yield inner.split(".", 1)[0]
        elif key == "Fn::Sub":
            text, variables = (inner[0], inner[1]) if isinstance(inner, list) else (inner, {})
            if isinstance(text, str):
                bound = set(variables) if isinstance(variables, Mapping) else set()
                yield from (name for name in _SUB_REFERENCE.findall(text) if name not in bound)
            yield from references(variables)
        else:
            yield from references(inner)


def _join(path: PropertyPath) -> str:
    return "/".join(path)


def _compare_resource(
    stack: str, logical_id: str, old: Mapping[str, Any], new: Mapping[str, Any]
) -> ResourceChange | None:
    old_type, new_type = str(old.get("Type", "")), str(new.get("Type", ""))
    paths = [
        f"Properties/{path}" if path else "Properties"
        for path in changed_paths(_properties(old), _properties(new))
    ]
    paths += [attr for attr in COMPARED_ATTRIBUTES if old.get(attr) != new.get(attr)]
    if old_type != new_type:
        return ResourceChange(
            stack,
            logical_id,
            new_type,
            ChangeKind.REPLACED,
            old,
            new,
            tuple(["Type", *paths]),
            (),
            (f"resource type changed from {old_type} to {new_type}",),
            type_schema(new_type) is not None,
        )
    if not paths:
        return None
    create_only = tuple(
        _join(pattern)
        for pattern in create_only_paths(new_type)
        if value_at(_properties(old), pattern) != value_at(_properties(new), pattern)
    )
    schema = type_schema(new_type)
    conditional = tuple(
        _join(pattern)
        for pattern in (schema.conditional_create_only if schema else ())
        if value_at(_properties(old), pattern) != value_at(_properties(new), pattern)
    )
    if create_only:
        reasons = tuple(f"create-only property {path} changed" for path in create_only)
        kind = ChangeKind.REPLACED
    else:
        reasons, kind = (), ChangeKind.MODIFIED
    return ResourceChange(
        stack,
        logical_id,
        new_type,
        kind,
        old,
        new,
        tuple(paths),
        create_only,
        reasons,
        schema is not None,
        conditional,
    )


def _cascade(
    stack: str,
    old_resources: Mapping[str, Mapping[str, Any]],
    new_resources: Mapping[str, Mapping[str, Any]],
    changes: dict[str, ResourceChange],
) -> None:
    """Propagate replacements through references until nothing more changes."""
    while True:
        replaced = {lid for lid, change in changes.items() if change.kind is ChangeKind.REPLACED}
        progressed = False
        for logical_id, new in new_resources.items():
            if logical_id not in old_resources or logical_id in replaced:
                continue
            current = changes.get(logical_id)
            new_type = str(new.get("Type", ""))
            props = _properties(new)
            by_create_only = [
                (_join(pattern), target)
                for pattern in create_only_paths(new_type)
                for target in sorted(set(references(value_at(props, pattern))) & replaced)
            ]
            referring = sorted(set(references(props)) & replaced)
            if by_create_only:
                reasons = tuple(
                    f"create-only property {path} refers to replaced {target}"
                    for path, target in by_create_only
                )
                paths = tuple(sorted({path for path, _ in by_create_only}))
                if current is None:
                    current = ResourceChange(
                        stack,
                        logical_id,
                        new_type,
                        ChangeKind.MODIFIED,
                        old_resources[logical_id],
                        new,
                        tuple(f"Properties/{path}" for path in paths),
                        schema_known=type_schema(new_type) is not None,
                    )
                changes[logical_id] = replace(
                    current,
                    kind=ChangeKind.REPLACED,
                    create_only_changed=tuple(sorted({*current.create_only_changed, *paths})),
                    replacement_reasons=current.replacement_reasons + reasons,
                )
                progressed = True
            elif referring and current is None:
                keys = [key for key, value in props.items() if set(references(value)) & replaced]
                changes[logical_id] = ResourceChange(
                    stack,
                    logical_id,
                    new_type,
                    ChangeKind.MODIFIED,
                    old_resources[logical_id],
                    new,
                    tuple(f"Properties/{key}" for key in keys),
                    schema_known=type_schema(new_type) is not None,
                    notes=tuple(f"updated: refers to replaced {target}" for target in referring),
                )
                progressed = True
        if not progressed:
            return


def diff_templates(stack: str, old: Template | None, new: Template | None) -> StackDiff:
    """The resource changes of one stack; ``old``/``new`` None for a stack added/removed."""
    old_resources, new_resources = _resources(old), _resources(new)
    changes: dict[str, ResourceChange] = {}
    for logical_id in sorted(set(old_resources) | set(new_resources)):
        before, after = old_resources.get(logical_id), new_resources.get(logical_id)
        if before is None and after is not None:
            rtype = str(after.get("Type", ""))
            changes[logical_id] = ResourceChange(
                stack,
                logical_id,
                rtype,
                ChangeKind.ADDED,
                None,
                after,
                schema_known=type_schema(rtype) is not None,
            )
        elif after is None and before is not None:
            rtype = str(before.get("Type", ""))
            changes[logical_id] = ResourceChange(
                stack,
                logical_id,
                rtype,
                ChangeKind.REMOVED,
                before,
                None,
                schema_known=type_schema(rtype) is not None,
            )
        elif before is not None and after is not None:
            change = _compare_resource(stack, logical_id, before, after)
            if change is not None:
                changes[logical_id] = change
    _cascade(stack, old_resources, new_resources, changes)
    if old is None:
        status = "added"
    elif new is None:
        status = "removed"
    else:
        status = "changed" if changes else "unchanged"
    return StackDiff(stack, status, tuple(changes[lid] for lid in sorted(changes)))


def diff_assemblies(old: Mapping[str, Template], new: Mapping[str, Template]) -> list[StackDiff]:
    """Per-stack diffs of two assemblies (stack name -> template), sorted by stack name."""
    return [
        diff_templates(name, old.get(name), new.get(name)) for name in sorted(set(old) | set(new))
    ]


def canonical(value: Any) -> str:
    """A stable JSON text of ``value``, for sets of policy elements that may be tokens."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
