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

* a custom resource declares, in its ``Metadata`` under ``hf-towers:physical-id-from``, the
  properties its physical id is derived from (the repack construct does: its physical id is the
  content-addressed output URI), and one of them changed: the provider returns a new physical
  id, which CloudFormation treats as a replacement (it creates the new one and sends Delete for
  the old one in the cleanup phase), so it cascades like any replacement (the Model whose
  ``ModelDataUrl`` is a ``Fn::GetAtt`` of it is replaced, then its EndpointConfig).

``Metadata`` and ``DependsOn`` do not change a deployed resource and are ignored, as are
``AWS::CDK::Metadata`` resources (the declaration above is read, not compared). Types without a
schema (custom resources) and without that declaration are never predicted as replaced;
``ResourceChange.schema_known`` says so.
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
# Resource Metadata key of a custom resource: the list of its properties its physical id is
# derived from. A provider that returns a different PhysicalResourceId on Update makes
# CloudFormation treat the update as a replacement and send a Delete request for the old
# physical id ("If the value returned is different, CloudFormation recognizes the update as a
# replacement and sends a delete request to the old resource":
# https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/crpg-ref-requesttypes-update.html),
# and every Fn::GetAtt/Ref of it becomes a new value. CloudFormation knows no schema of a custom
# type, so the construct that owns the handler declares what its physical id depends on.
PHYSICAL_ID_FROM = "hf-towers:physical-id-from"
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
    # Replacement is predictable: the type has a schema, or (custom resource) it declares the
    # properties its physical id derives from (``PHYSICAL_ID_FROM``).
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
    """All resource changes of one stack; ``status`` is added/removed/changed/unchanged.

    ``old_resources``/``new_resources`` are the compared templates' resources (logical id ->
    resource), for rules that need more than the changed resources (an unchanged scalable
    target that makes an endpoint update fail); not part of equality.
    """

    stack: str
    status: str
    changes: tuple[ResourceChange, ...] = field(default=())
    old_resources: Mapping[str, Mapping[str, Any]] = field(
        default_factory=dict, compare=False, repr=False
    )
    new_resources: Mapping[str, Mapping[str, Any]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def change(self, logical_id: str) -> ResourceChange | None:
        """The change of ``logical_id``; None when it is unchanged (or unknown)."""
        return next((c for c in self.changes if c.logical_id == logical_id), None)

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


def physical_id_properties(*resources: Mapping[str, Any] | None) -> tuple[str, ...]:
    """The properties the physical id of a custom resource derives from, as declared in its
    ``Metadata`` (``PHYSICAL_ID_FROM``) by the old or the new version; empty when undeclared
    (or malformed: not a list of property names)."""
    declared: set[str] = set()
    for resource in resources:
        metadata = resource.get("Metadata") if resource is not None else None
        names = metadata.get(PHYSICAL_ID_FROM) if isinstance(metadata, Mapping) else None
        if isinstance(names, list) and all(isinstance(name, str) for name in names):
            declared.update(names)
    return tuple(sorted(declared))


def replacing_paths(
    resource_type: str, *resources: Mapping[str, Any] | None
) -> tuple[PropertyPath, ...]:
    """Property paths whose change replaces the resource: the schema's create-only paths, or for
    a custom resource without a schema the declared physical-id properties."""
    if type_schema(resource_type) is not None:
        return create_only_paths(resource_type)
    return tuple((name,) for name in physical_id_properties(*resources))


def _predictable(resource_type: str, *resources: Mapping[str, Any] | None) -> bool:
    return type_schema(resource_type) is not None or bool(physical_id_properties(*resources))


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
    replacing = replacing_paths(new_type, old, new)
    create_only = tuple(
        _join(pattern)
        for pattern in replacing
        if value_at(_properties(old), pattern) != value_at(_properties(new), pattern)
    )
    schema = type_schema(new_type)
    conditional = tuple(
        _join(pattern)
        for pattern in (schema.conditional_create_only if schema else ())
        if value_at(_properties(old), pattern) != value_at(_properties(new), pattern)
    )
    notes = _update_notes(new_type, [path.split("/")[1] for path in paths if "/" in path])
    if create_only and schema is None:
        reasons = tuple(
            f"physical id derives from {path} ({PHYSICAL_ID_FROM}), which changed: a new "
            "physical id, so CloudFormation creates the new one and deletes the old one after "
            "the update"
            for path in create_only
        )
        kind = ChangeKind.REPLACED
    elif create_only:
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
        _predictable(new_type, old, new),
        conditional,
        notes,
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
                for pattern in replacing_paths(new_type, old_resources[logical_id], new)
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
                        schema_known=_predictable(new_type, old_resources[logical_id], new),
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
                    schema_known=_predictable(new_type, old_resources[logical_id], new),
                    notes=(
                        *(f"updated: refers to replaced {target}" for target in referring),
                        *_update_notes(new_type, keys),
                    ),
                )
                progressed = True
        if not progressed:
            return


# UpdateEndpoint "deploys the EndpointConfig specified in the request to a new fleet of
# instances", shifts traffic to it and then deletes the old instances, under the endpoint's
# DeploymentConfig (blue/green or rolling):
# https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_UpdateEndpoint.html
ENDPOINT_ROLLOUT = (
    "updated in place with a rollout: SageMaker deploys the new endpoint configuration on new "
    "instances and shifts traffic to them (DeploymentConfig); the endpoint name stays"
)


# AWS::SageMaker::InferenceComponent has no createOnlyProperties in its registry schema, and
# the template reference gives every property "Update requires: No interruption"
# (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-sagemaker-inferencecomponent.html):
# a change is an UpdateInferenceComponent call on the same component. SageMaker updates a
# component blue/green by default (new copies beside the old ones, then the old removed) or in
# batches under DeploymentConfig.RollingUpdatePolicy
# (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_InferenceComponentRollingUpdatePolicy.html,
# https://aws.amazon.com/blogs/machine-learning/enhance-deployment-guardrails-with-inference-component-rolling-updates-for-amazon-sagemaker-ai-inference/).
INFERENCE_COMPONENT_TYPE = "AWS::SageMaker::InferenceComponent"
COMPONENT_ROLLOUT = (
    "updated in place (UpdateInferenceComponent): SageMaker starts copies of the new "
    "specification beside the old ones and then removes the old ones (blue/green, or in batches "
    "under DeploymentConfig.RollingUpdatePolicy); the endpoint and its other components are not "
    "touched, but the new copies need free accelerators/memory on the endpoint's instances (or "
    "room to add instances up to ManagedInstanceScaling.MaxInstanceCount)"
)
# RuntimeConfig.CopyCount is applied with UpdateInferenceComponentRuntimeConfig (in the
# resource's update handler permissions): the template's value replaces the live copy count.
COPY_COUNT_SET = (
    "copy count set to the template's RuntimeConfig.CopyCount "
    "(UpdateInferenceComponentRuntimeConfig): it overrides the copy count autoscaling chose "
    "until the next scaling activity"
)
# An EndpointConfig in inference-component form: the execution role is on the config and no
# production variant names a model (the models come with the components); ExecutionRoleArn and
# ProductionVariants (with ManagedInstanceScaling and RoutingConfig inside) are create-only, so
# any change to such a config replaces it and rolls the endpoint
# (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-sagemaker-endpointconfig.html).
SHARED_FLEET_ROLLOUT = (
    "the endpoint hosts inference components (its EndpointConfig has an ExecutionRoleArn and no "
    "ModelName in its variants): the new configuration's fleet carries every component of this "
    "endpoint, so all of them move; to change one tower only, change its InferenceComponent"
)


def _update_notes(resource_type: str, keys: list[str]) -> tuple[str, ...]:
    if resource_type == "AWS::SageMaker::Endpoint" and "EndpointConfigName" in keys:
        return (ENDPOINT_ROLLOUT,)
    if resource_type == INFERENCE_COMPONENT_TYPE:
        return (
            *((COMPONENT_ROLLOUT,) if "Specification" in keys else ()),
            *((COPY_COUNT_SET,) if "RuntimeConfig" in keys else ()),
        )
    return ()


def is_component_config(resource: Mapping[str, Any] | None) -> bool:
    """An ``AWS::SageMaker::EndpointConfig`` in inference-component form: ``ExecutionRoleArn``
    set and no production variant naming a ``ModelName``."""
    if resource is None or resource.get("Type") != "AWS::SageMaker::EndpointConfig":
        return False
    props = _properties(resource)
    variants = props.get("ProductionVariants")
    return (
        "ExecutionRoleArn" in props
        and isinstance(variants, list)
        and all(isinstance(v, Mapping) and "ModelName" not in v for v in variants)
    )


def _shared_fleet_notes(
    new_resources: Mapping[str, Mapping[str, Any]], changes: dict[str, ResourceChange]
) -> None:
    """Add ``SHARED_FLEET_ROLLOUT`` to endpoints rolled out onto a component-form config."""
    for logical_id, change in changes.items():
        if ENDPOINT_ROLLOUT not in change.notes or change.new is None:
            continue
        configs = references(_properties(change.new).get("EndpointConfigName"))
        if any(is_component_config(new_resources.get(target)) for target in configs):
            changes[logical_id] = replace(change, notes=(*change.notes, SHARED_FLEET_ROLLOUT))


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
                schema_known=_predictable(rtype, after),
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
                schema_known=_predictable(rtype, before),
            )
        elif before is not None and after is not None:
            change = _compare_resource(stack, logical_id, before, after)
            if change is not None:
                changes[logical_id] = change
    _cascade(stack, old_resources, new_resources, changes)
    _shared_fleet_notes(new_resources, changes)
    if old is None:
        status = "added"
    elif new is None:
        status = "removed"
    else:
        status = "changed" if changes else "unchanged"
    return StackDiff(
        stack,
        status,
        tuple(changes[lid] for lid in sorted(changes)),
        old_resources,
        new_resources,
    )


def diff_assemblies(old: Mapping[str, Template], new: Mapping[str, Template]) -> list[StackDiff]:
    """Per-stack diffs of two assemblies (stack name -> template), sorted by stack name."""
    return [
        diff_templates(name, old.get(name), new.get(name)) for name in sorted(set(old) | set(new))
    ]


def canonical(value: Any) -> str:
    """A stable JSON text of ``value``, for sets of policy elements that may be tokens."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
