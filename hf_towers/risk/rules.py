"""Risk rules: small named checks over one ``ResourceChange`` each.

Every rule returns the findings it has for a change (usually none). A finding is something a
reviewer must look at before merging; ``--fail-on risky`` fails on any. The rules:

* ``stateful-replaced``: a resource that holds data (bucket, key, log group, table, ...) or that
  has a ``Retain``/``Snapshot`` policy is replaced: the new one starts empty.
* ``stateful-removed``: such a resource is removed from the template.
* ``retention-dropped``: ``DeletionPolicy``/``UpdateReplacePolicy`` goes from ``Retain`` or
  ``Snapshot`` to something that deletes.
* ``endpoint-replaced``: a SageMaker Endpoint is replaced (new endpoint, callers break while
  it is created) or removed.
* ``named-resource-replaced``: the replaced resource has an explicit physical name
  (``BucketName``, ``EndpointName``, ``RoleName``...): with the name unchanged CloudFormation
  cannot create the replacement beside the old one and the update fails (severity *will
  fail*); with a new name,
  everything that addresses the old name breaks. Generated names are replaced safely.
* ``iam-widened``: an IAM policy (``AWS::IAM::Policy``, ``AWS::IAM::ManagedPolicy``, a role's
  inline ``Policies``, a bucket, key, queue or topic policy) grants new actions, a new ``*`` in
  ``Action`` or ``Resource``, a new principal, drops a ``Deny``, or a role gets a new managed
  policy. For a newly added policy only wildcards and public principals are flagged.
* ``encryption-removed``: an encryption setting (``BucketEncryption``, ``KmsKeyId`` of an
  EndpointConfig or log group, ...) is removed or turned off.
* ``kms-key-disabled``: a KMS key is disabled or its rotation is turned off.
* ``autoscaled-variant-update`` (severity *will fail*): an EndpointConfig change that SageMaker
  rejects because the endpoint's variant is registered with Application Auto Scaling: its
  ``InstanceType`` changes, or the variant is removed. The message gives the way out.

* ``inference-component-moved``: an ``AWS::SageMaker::InferenceComponent`` would change its
  ``EndpointName``, ``VariantName`` or ``InferenceComponentName`` (a new value, or a reference to
  a replaced endpoint): CloudFormation lists them as updatable, but UpdateInferenceComponent
  cannot move or rename a component, so the outcome is not documented.

Every finding has a ``severity``: ``risky`` (review it) or ``will-fail`` (CloudFormation or the
service rejects the update as written; the message starts with "will fail:" and says what to do
instead). Stack rules (``StackRule``) see the whole stack diff, for findings that depend on
resources other than the changed one (an unchanged scalable target).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from hf_towers.risk.schemas import PropertyPath, create_only_paths
from hf_towers.risk.template_diff import (
    ChangeKind,
    ResourceChange,
    StackDiff,
    canonical,
    is_missing,
    references,
    value_at,
)

RISKY = "risky"
"""A change a reviewer must look at before merging."""
WILL_FAIL = "will-fail"
"""A change CloudFormation or the service will reject: the deploy fails and rolls back."""
SEVERITIES = (WILL_FAIL, RISKY)


@dataclass(frozen=True)
class Finding:
    """One risky change: which rule, which resource, and why, in a sentence."""

    rule: str
    stack: str
    logical_id: str
    resource_type: str
    message: str
    severity: str = RISKY

    @property
    def will_fail(self) -> bool:
        return self.severity == WILL_FAIL


RuleFunc = Callable[[ResourceChange], Iterable["str | Verdict"]]


@dataclass(frozen=True)
class Verdict:
    """A message with its own severity, for a rule whose findings differ in severity."""

    message: str
    severity: str


def _verdict(item: str | Verdict, default: str) -> Verdict:
    return item if isinstance(item, Verdict) else Verdict(item, default)


# A stack rule yields (logical id, resource type, message) for any resource of the stack.
StackRuleFunc = Callable[[StackDiff], Iterable[tuple[str, str, str]]]


@dataclass(frozen=True)
class Rule:
    name: str
    check: RuleFunc
    severity: str = RISKY

    def __call__(self, change: ResourceChange) -> list[Finding]:
        verdicts = (_verdict(item, self.severity) for item in self.check(change))
        return [
            Finding(
                self.name,
                change.stack,
                change.logical_id,
                change.resource_type,
                verdict.message,
                verdict.severity,
            )
            for verdict in verdicts
        ]


@dataclass(frozen=True)
class StackRule:
    """A rule over a whole stack diff (it may need resources that did not change)."""

    name: str
    check: StackRuleFunc
    severity: str = RISKY

    def __call__(self, diff: StackDiff) -> list[Finding]:
        return [
            Finding(self.name, diff.stack, logical_id, rtype, message, self.severity)
            for logical_id, rtype, message in self.check(diff)
        ]


RULES: list[Rule | StackRule] = []


def rule(name: str, severity: str = RISKY) -> Callable[[RuleFunc], Rule]:
    """Register ``func`` as the rule ``name``."""

    def register(func: RuleFunc) -> Rule:
        registered = Rule(name, func, severity)
        RULES.append(registered)
        return registered

    return register


def stack_rule(name: str, severity: str = RISKY) -> Callable[[StackRuleFunc], StackRule]:
    """Register ``func`` as the stack rule ``name``."""

    def register(func: StackRuleFunc) -> StackRule:
        registered = StackRule(name, func, severity)
        RULES.append(registered)
        return registered

    return register


def _findings_of(diff: StackDiff, active: Sequence[Rule | StackRule]) -> list[Finding]:
    per_change = [
        finding
        for change in diff.changes
        for check in active
        if isinstance(check, Rule)
        for finding in check(change)
    ]
    per_stack = [
        finding for check in active if isinstance(check, StackRule) for finding in check(diff)
    ]
    order = {change.logical_id: index for index, change in enumerate(diff.changes)}
    return sorted([*per_change, *per_stack], key=lambda f: order.get(f.logical_id, len(order)))


def evaluate(
    diffs: Sequence[StackDiff], rules: Sequence[Rule | StackRule] | None = None
) -> list[Finding]:
    """Every finding of every rule over every change: *will fail* ones first, then in
    stack/resource order."""
    active = RULES if rules is None else rules
    found = [finding for diff in diffs for finding in _findings_of(diff, active)]
    return sorted(found, key=lambda finding: SEVERITIES.index(finding.severity))


# --- stateful resources ------------------------------------------------------------------

STATEFUL_TYPES = frozenset(
    {
        "AWS::S3::Bucket",
        "AWS::S3Express::DirectoryBucket",
        "AWS::KMS::Key",
        "AWS::Logs::LogGroup",
        "AWS::DynamoDB::Table",
        "AWS::DynamoDB::GlobalTable",
        "AWS::RDS::DBInstance",
        "AWS::RDS::DBCluster",
        "AWS::EFS::FileSystem",
        "AWS::EC2::Volume",
        "AWS::SQS::Queue",
        "AWS::Kinesis::Stream",
        "AWS::ECR::Repository",
        "AWS::SecretsManager::Secret",
        "AWS::Cognito::UserPool",
        "AWS::ElastiCache::ReplicationGroup",
        "AWS::OpenSearchService::Domain",
        "AWS::Backup::BackupVault",
        "AWS::SageMaker::Domain",
        "AWS::SageMaker::FeatureGroup",
        "AWS::SageMaker::ModelPackageGroup",
    }
)
RETAINING_POLICIES = frozenset({"Retain", "RetainExceptOnCreate", "Snapshot"})


def _retained(resource: Mapping[str, Any] | None, attribute: str) -> bool:
    return resource is not None and resource.get(attribute) in RETAINING_POLICIES


def is_stateful(change: ResourceChange) -> bool:
    """Holds data: a stateful type, or marked to be kept on deletion/replacement."""
    resource = change.old if change.old is not None else change.new
    return change.resource_type in STATEFUL_TYPES or any(
        _retained(resource, attr) for attr in ("DeletionPolicy", "UpdateReplacePolicy")
    )


@rule("stateful-replaced")
def stateful_replaced(change: ResourceChange) -> Iterator[str]:
    if change.kind is not ChangeKind.REPLACED or not is_stateful(change):
        return
    fate = (
        "the old one is retained (orphaned), not migrated"
        if _retained(change.old, "UpdateReplacePolicy")
        else "the old one and its data are deleted"
    )
    why = "; ".join(change.replacement_reasons) or "replacement"
    yield f"stateful resource is replaced ({why}): the new one starts empty and {fate}"


@rule("stateful-removed")
def stateful_removed(change: ResourceChange) -> Iterator[str]:
    if change.kind is not ChangeKind.REMOVED or not is_stateful(change):
        return
    if _retained(change.old, "DeletionPolicy"):
        yield "stateful resource is removed from the stack; it is retained but orphaned"
    else:
        yield "stateful resource is removed from the stack and deleted with its data"


@rule("retention-dropped")
def retention_dropped(change: ResourceChange) -> Iterator[str]:
    if change.kind not in (ChangeKind.MODIFIED, ChangeKind.REPLACED):
        return
    for attribute in ("DeletionPolicy", "UpdateReplacePolicy"):
        if _retained(change.old, attribute) and not _retained(change.new, attribute):
            new_value = (change.new or {}).get(attribute, "Delete (default)")
            yield f"{attribute} changes from {(change.old or {}).get(attribute)} to {new_value}"


# --- endpoints and physical names --------------------------------------------------------


@rule("endpoint-replaced")
def endpoint_replaced(change: ResourceChange) -> Iterator[str]:
    if change.resource_type != "AWS::SageMaker::Endpoint":
        return
    if change.kind is ChangeKind.REPLACED:
        why = "; ".join(change.replacement_reasons)
        yield (
            f"SageMaker endpoint is replaced ({why}): a new endpoint is created and the old one "
            "deleted; clients of the old endpoint name fail"
        )
    elif change.kind is ChangeKind.REMOVED:
        yield "SageMaker endpoint is removed: inference traffic to it fails"


def name_properties(resource_type: str) -> tuple[str, ...]:
    """Top-level create-only properties that set a physical name (``BucketName``, ...)."""
    return tuple(
        path[0]
        for path in create_only_paths(resource_type)
        if len(path) == 1 and path[0].endswith("Name") and path[0] != "KeyName"
    )


@rule("named-resource-replaced")
def named_resource_replaced(change: ResourceChange) -> Iterator[str | Verdict]:
    if change.kind is not ChangeKind.REPLACED:
        return
    for prop in name_properties(change.resource_type):
        new_name = change.new_properties.get(prop)
        if new_name is None:
            continue
        old_name = change.old_properties.get(prop)
        if old_name == new_name:
            # "You can't perform an update that causes a custom-named resource to be replaced.
            # If you must replace the resource, specify a new name."
            # https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-properties-name.html
            yield Verdict(
                f"will fail: replacement of a custom-named resource ({prop}="
                f"{canonical(new_name)}): CloudFormation cannot create the new one while the "
                "old one holds the name, so the update fails; remove the explicit name or "
                "rename it (https://docs.aws.amazon.com/AWSCloudFormation/latest/"
                "TemplateReference/aws-properties-name.html)",
                WILL_FAIL,
            )
        else:
            yield (
                f"{prop} changes from {canonical(old_name)} to {canonical(new_name)}: the "
                "resource is replaced and whatever addresses it by the old name breaks"
            )


# --- IAM -----------------------------------------------------------------------------------


def _as_list(value: Any) -> list[Any]:
    if value is None or is_missing(value):
        return []
    return list(value) if isinstance(value, list) else [value]


def policy_documents(resource_type: str, props: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """(where, document) of every permission policy in a resource's properties."""
    if resource_type in (
        "AWS::IAM::Policy",
        "AWS::IAM::ManagedPolicy",
        "AWS::IAM::RolePolicy",
        "AWS::IAM::UserPolicy",
        "AWS::IAM::GroupPolicy",
        "AWS::S3::BucketPolicy",
        "AWS::SQS::QueuePolicy",
        "AWS::SNS::TopicPolicy",
    ):
        return [("PolicyDocument", props.get("PolicyDocument"))]
    if resource_type in ("AWS::IAM::Role", "AWS::IAM::User", "AWS::IAM::Group"):
        docs = [
            (f"Policies/{policy.get('PolicyName', index)}", policy.get("PolicyDocument"))
            for index, policy in enumerate(_as_list(props.get("Policies")))
            if isinstance(policy, Mapping)
        ]
        if "AssumeRolePolicyDocument" in props:
            docs.append(("AssumeRolePolicyDocument", props["AssumeRolePolicyDocument"]))
        return docs
    if resource_type == "AWS::KMS::Key":
        return [("KeyPolicy", props.get("KeyPolicy"))]
    return []


@dataclass
class Grants:
    """What the Allow statements of a resource's policies grant, as comparable texts."""

    actions: set[str]
    resources: set[str]
    principals: set[str]
    denies: set[str]

    @property
    def wildcard_actions(self) -> set[str]:
        return {action for action in self.actions if "*" in action}


def _principals(principal: Any) -> Iterator[str]:
    if isinstance(principal, Mapping) and not (len(principal) == 1 and "Ref" in principal):
        for kind, values in principal.items():
            for value in _as_list(values):
                yield f"{kind}:{value if isinstance(value, str) else canonical(value)}"
    elif principal is not None:
        yield principal if isinstance(principal, str) else canonical(principal)


def grants(resource_type: str, props: Mapping[str, Any]) -> Grants:
    result = Grants(set(), set(), set(), set())
    for _, document in policy_documents(resource_type, props):
        if not isinstance(document, Mapping):
            continue
        for statement in _as_list(document.get("Statement")):
            if not isinstance(statement, Mapping):
                continue
            if statement.get("Effect") == "Deny":
                result.denies.add(canonical(statement))
                continue
            for action in _as_list(statement.get("Action")):
                result.actions.add(action.lower() if isinstance(action, str) else canonical(action))
            if "NotAction" in statement:
                result.actions.add(f"NotAction {canonical(statement['NotAction'])} (*)")
            for resource in _as_list(statement.get("Resource")):
                result.resources.add(resource if isinstance(resource, str) else canonical(resource))
            if "NotResource" in statement:
                result.resources.add("*")
            for key in ("Principal", "NotPrincipal"):
                if key in statement:
                    result.principals.update(_principals(statement[key]))
    return result


def _covered(action: str, granted: set[str]) -> bool:
    """``action`` is already granted: listed, or matched by a wildcard (``s3:*``, ``s3:Get*``)."""
    return action in granted or any(
        fnmatchcase(action, pattern) for pattern in granted if "*" in pattern
    )


def _brief(items: Iterable[str], limit: int = 6) -> str:
    ordered = sorted(items)
    shown = ", ".join(f"`{item}`" for item in ordered[:limit])
    return shown + (f" and {len(ordered) - limit} more" if len(ordered) > limit else "")


def _public(principals: set[str]) -> set[str]:
    return {p for p in principals if p in ("*", "AWS:*")}


@rule("iam-widened")
def iam_widened(change: ResourceChange) -> Iterator[str]:
    if change.kind is ChangeKind.REMOVED:
        return
    new = grants(change.resource_type, change.new_properties)
    if change.kind is ChangeKind.ADDED:
        if new.wildcard_actions:
            yield f"new policy grants wildcard actions {_brief(new.wildcard_actions)}"
        if "*" in new.resources:
            yield "new policy grants on `Resource: *`"
        if _public(new.principals):
            yield "new policy allows any principal (`*`)"
        return
    old = grants(change.resource_type, change.old_properties)
    if added_wildcards := new.wildcard_actions - old.wildcard_actions:
        yield f"adds wildcard actions {_brief(added_wildcards)}"
    if added_actions := {a for a in new.actions - added_wildcards if not _covered(a, old.actions)}:
        yield f"grants new actions {_brief(added_actions)}"
    if "*" in new.resources and "*" not in old.resources:
        yield "adds `Resource: *`"
    if added_principals := new.principals - old.principals:
        yield f"allows new principals {_brief(added_principals)}"
    if dropped_denies := old.denies - new.denies:
        yield f"removes {len(dropped_denies)} Deny statement(s)"
    if change.resource_type in ("AWS::IAM::Role", "AWS::IAM::User", "AWS::IAM::Group"):
        before = {
            canonical(arn) for arn in _as_list(change.old_properties.get("ManagedPolicyArns"))
        }
        after = {canonical(arn) for arn in _as_list(change.new_properties.get("ManagedPolicyArns"))}
        if after - before:
            yield f"attaches new managed policies {_brief(after - before)}"


# --- encryption -----------------------------------------------------------------------------

ENCRYPTION_SETTINGS: dict[str, tuple[PropertyPath, ...]] = {
    "AWS::S3::Bucket": (
        ("BucketEncryption",),
        (
            "BucketEncryption",
            "ServerSideEncryptionConfiguration",
            "*",
            "ServerSideEncryptionByDefault",
            "KMSMasterKeyID",
        ),
    ),
    "AWS::SageMaker::EndpointConfig": (
        ("KmsKeyId",),
        ("DataCaptureConfig", "KmsKeyId"),
        ("AsyncInferenceConfig", "OutputConfig", "KmsKeyId"),
    ),
    "AWS::SageMaker::NotebookInstance": (("KmsKeyId",),),
    "AWS::Logs::LogGroup": (("KmsKeyId",),),
    "AWS::SNS::Topic": (("KmsMasterKeyId",),),
    "AWS::SQS::Queue": (("KmsMasterKeyId",), ("SqsManagedSseEnabled",)),
    "AWS::DynamoDB::Table": (
        ("SSESpecification", "SSEEnabled"),
        ("SSESpecification", "KMSMasterKeyId"),
    ),
    "AWS::EC2::Volume": (("Encrypted",), ("KmsKeyId",)),
    "AWS::RDS::DBInstance": (("StorageEncrypted",), ("KmsKeyId",)),
    "AWS::RDS::DBCluster": (("StorageEncrypted",), ("KmsKeyId",)),
    "AWS::EFS::FileSystem": (("Encrypted",), ("KmsKeyId",)),
    "AWS::Kinesis::Stream": (("StreamEncryption",),),
    "AWS::SecretsManager::Secret": (("KmsKeyId",),),
    "AWS::ECR::Repository": (("EncryptionConfiguration",),),
}


def _set(value: Any) -> bool:
    """A present, enabling value: not absent, not ``false``; for ``*`` paths, any item set."""
    if isinstance(value, list):
        return any(_set(item) for item in value)
    return not is_missing(value) and value is not False and value != "false"


@rule("encryption-removed")
def encryption_removed(change: ResourceChange) -> Iterator[str]:
    if change.kind not in (ChangeKind.MODIFIED, ChangeKind.REPLACED):
        return
    for path in ENCRYPTION_SETTINGS.get(change.resource_type, ()):
        before = value_at(change.old_properties, path)
        after = value_at(change.new_properties, path)
        if _set(before) and not _set(after):
            where = "/".join(path)
            yield f"encryption setting {where} is removed or turned off (was {canonical(before)})"


@rule("kms-key-disabled")
def kms_key_disabled(change: ResourceChange) -> Iterator[str]:
    if change.resource_type != "AWS::KMS::Key" or change.kind not in (
        ChangeKind.MODIFIED,
        ChangeKind.REPLACED,
    ):
        return
    old, new = change.old_properties, change.new_properties
    if old.get("Enabled", True) not in (False, "false") and new.get("Enabled", True) in (
        False,
        "false",
    ):
        yield "KMS key is disabled: everything encrypted with it becomes unreadable"
    if old.get("EnableKeyRotation") in (True, "true") and new.get("EnableKeyRotation") not in (
        True,
        "true",
    ):
        yield "automatic rotation of the KMS key is turned off"


# --- updates the service rejects -------------------------------------------------------------

AUTOSCALING_UPDATE_PAGE = (
    "https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-scaling-update.html"
)
ENDPOINT_TYPE = "AWS::SageMaker::Endpoint"
ENDPOINT_CONFIG_TYPE = "AWS::SageMaker::EndpointConfig"
SCALABLE_TARGET_TYPE = "AWS::ApplicationAutoScaling::ScalableTarget"


def _variants(props: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """Production variants by (literal) ``VariantName``."""
    return {
        variant["VariantName"]: variant
        for variant in _as_list(props.get("ProductionVariants"))
        if isinstance(variant, Mapping) and isinstance(variant.get("VariantName"), str)
    }


def _config_variants(
    resources: Mapping[str, Mapping[str, Any]], endpoint: Mapping[str, Any]
) -> dict[str, Mapping[str, Any]]:
    """The variants of the EndpointConfig(s) an endpoint's ``EndpointConfigName`` refers to."""
    found: dict[str, Mapping[str, Any]] = {}
    for target in references(_props(endpoint).get("EndpointConfigName")):
        config = resources.get(target)
        if config is not None and config.get("Type") == ENDPOINT_CONFIG_TYPE:
            found.update(_variants(_props(config)))
    return found


def _props(resource: Mapping[str, Any]) -> Mapping[str, Any]:
    props = resource.get("Properties", {})
    return props if isinstance(props, Mapping) else {}


def _endpoint_name(logical_id: str, endpoint: Mapping[str, Any]) -> str:
    """The literal ``EndpointName``, or a marker standing for the generated one."""
    name = _props(endpoint).get("EndpointName")
    return name if isinstance(name, str) else f"<{logical_id}.EndpointName>"


def _text(value: Any, names: Mapping[str, str]) -> str | None:
    """A string value with ``Fn::GetAtt [<endpoint>, EndpointName]`` (also inside ``Fn::Join``
    and ``Fn::Sub``) replaced by that endpoint's name; None when another token remains."""
    if isinstance(value, str):
        return value
    if not isinstance(value, Mapping) or len(value) != 1:
        return None
    key, inner = next(iter(value.items()))
    if key == "Fn::Join" and isinstance(inner, list) and len(inner) == 2:
        separator, parts = inner
        if isinstance(separator, str) and isinstance(parts, list):
            texts = [_text(part, names) for part in parts]
            return None if any(t is None for t in texts) else separator.join(map(str, texts))
    if key == "Fn::GetAtt":
        target = inner if isinstance(inner, list) else str(inner).split(".", 1)
        if len(target) == 2 and target[1] == "EndpointName" and target[0] in names:
            return names[str(target[0])]
    if key == "Fn::Sub" and isinstance(inner, str):
        text = inner
        for logical_id, name in names.items():
            text = text.replace(f"${{{logical_id}.EndpointName}}", name)
        return None if "${" in text else text
    return None


def _variant_problems(
    old: Mapping[str, Mapping[str, Any]], new: Mapping[str, Mapping[str, Any]]
) -> dict[str, str]:
    """Variant name -> what happens to it that an auto-scaled variant does not allow."""
    problems: dict[str, str] = {}
    for name, variant in old.items():
        if name not in new:
            problems[name] = "is removed"
        elif "InstanceType" in variant and variant["InstanceType"] != new[name].get("InstanceType"):
            after = new[name].get("InstanceType", "(none: serverless)")
            problems[name] = (
                f"changes InstanceType from {_plain(variant['InstanceType'])} to {_plain(after)}"
            )
    return problems


def _plain(value: Any) -> str:
    return value if isinstance(value, str) else canonical(value)


@stack_rule("autoscaled-variant-update", WILL_FAIL)
def autoscaled_variant_update(diff: StackDiff) -> Iterator[tuple[str, str, str]]:
    """SageMaker: "If the update would change the instance type for any model that is a target
    for auto scaling, the update fails"; removing such a variant needs the same deregistration
    first (AUTOSCALING_UPDATE_PAGE). The registration that counts is the deployed one (the base
    template): a scalable target removed in the same deploy is deleted only in the cleanup
    phase, after the endpoint update ("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS: ongoing removal of
    old resources ... after a successful stack update",
    https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/view-stack-events.html), and
    one added in the same deploy is registered after the endpoint it refers to is updated."""
    for endpoint_id, endpoint in diff.new_resources.items():
        old_endpoint = diff.old_resources.get(endpoint_id)
        if endpoint.get("Type") != ENDPOINT_TYPE or old_endpoint is None:
            continue
        if old_endpoint.get("Type") != ENDPOINT_TYPE:
            continue
        change = diff.change(endpoint_id)
        if change is not None and change.kind is ChangeKind.REPLACED:
            continue  # a new endpoint is created with the new configuration, not updated
        problems = _variant_problems(
            _config_variants(diff.old_resources, old_endpoint),
            _config_variants(diff.new_resources, endpoint),
        )
        if not problems:
            continue
        name = _endpoint_name(endpoint_id, old_endpoint)
        for target_id, target in sorted(diff.old_resources.items()):
            props = _props(target)
            if target.get("Type") != SCALABLE_TARGET_TYPE or props.get("ServiceNamespace") != (
                "sagemaker"
            ):
                continue
            resource_id = _text(props.get("ResourceId"), {endpoint_id: name})
            for variant, problem in sorted(problems.items()):
                if resource_id != f"endpoint/{name}/variant/{variant}":
                    continue
                yield (
                    endpoint_id,
                    ENDPOINT_TYPE,
                    f"will fail: variant {variant} of endpoint {name} {problem}, and it is "
                    f"registered with Application Auto Scaling ({target_id}, {resource_id}): "
                    "SageMaker rejects an endpoint update that changes the instance type of (or "
                    "removes) an auto-scaled variant, so the stack update fails and rolls back; "
                    "removing the autoscaling in the same deploy does not help (the scalable "
                    "target is deregistered only after the endpoint update). Way out: deploy "
                    "once with autoscaling disabled for this tower (`autoscaling: {enabled: "
                    "false}`), then deploy this change, then re-enable autoscaling; or deploy "
                    "the tower under a new endpoint name (a new endpoint; clients must switch). "
                    f"{AUTOSCALING_UPDATE_PAGE}",
                )


# --- inference components ---------------------------------------------------------------------

INFERENCE_COMPONENT_TYPE = "AWS::SageMaker::InferenceComponent"
# The template reference gives EndpointName, VariantName and InferenceComponentName "Update
# requires: No interruption" (and the registry schema has no createOnlyProperties), yet the API
# CloudFormation must call takes only InferenceComponentName (to find the component),
# Specification, RuntimeConfig and DeploymentConfig: nothing that moves or renames one.
INFERENCE_COMPONENT_PAGES = (
    "https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/"
    "aws-resource-sagemaker-inferencecomponent.html, "
    "https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_UpdateInferenceComponent.html"
)
PLACEMENT_PROPERTIES = ("EndpointName", "VariantName", "InferenceComponentName")


def _placement_changes(
    old: Mapping[str, Any], new: Mapping[str, Any], replaced: set[str]
) -> Iterator[str]:
    for prop in PLACEMENT_PROPERTIES:
        before, after = old.get(prop), new.get(prop)
        if before != after:
            yield f"{prop} changes from {_plain(before)} to {_plain(after)}"
        elif targets := sorted(set(references(after)) & replaced):
            yield f"{prop} refers to replaced {', '.join(targets)} (a new value at deploy time)"


@stack_rule("inference-component-moved")
def inference_component_moved(diff: StackDiff) -> Iterator[tuple[str, str, str]]:
    """An inference component asked to move to another endpoint or variant, or to be renamed."""
    replaced = {c.logical_id for c in diff.changes if c.kind is ChangeKind.REPLACED}
    for logical_id, resource in sorted(diff.new_resources.items()):
        old = diff.old_resources.get(logical_id)
        if resource.get("Type") != INFERENCE_COMPONENT_TYPE or old is None:
            continue
        if old.get("Type") != INFERENCE_COMPONENT_TYPE:
            continue
        for what in _placement_changes(_props(old), _props(resource), replaced):
            yield (
                logical_id,
                INFERENCE_COMPONENT_TYPE,
                f"inference component {what}: CloudFormation lists this property as updatable "
                "in place, but UpdateInferenceComponent cannot move a component to another "
                "endpoint or variant, or rename it, so what this update does is not documented "
                "(it may fail, or leave the component where it is). Safer: give the component a "
                "new construct id (a new logical id), so CloudFormation creates it where the "
                "template says and deletes the old one after the update. "
                f"{INFERENCE_COMPONENT_PAGES}",
            )
