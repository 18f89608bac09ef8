"""IAM linting of synthesized templates with parliament (AWS's action/resource/condition tables).

Three parts, each tested in ``tests/test_iam_lint.py``:

* ``Renderer`` turns CloudFormation intrinsics inside a policy document into concrete values:
  ``Ref``/``Fn::GetAtt`` of a resource become a value of the right shape for the referenced
  resource's type (an ARN where CloudFormation returns one, so parliament's resource-type
  matching is exercised), pseudo parameters the stack's account/region, ``Fn::ImportValue`` the
  rendered value of the export in the same app. Anything it cannot render raises ``RenderError``.
* ``policy_documents`` collects every policy document of a template: identity policies
  (``AWS::IAM::ManagedPolicy``/``Policy``, ``Role``/``User``/``Group`` ``Policies``), trust
  policies (``AssumeRolePolicyDocument``) and resource policies (bucket, key, topic, queue,
  ...); a ``Statement`` anywhere else in a resource's properties is an ``UNCOLLECTED_POLICY``.
* ``lint`` runs parliament on each rendered document and returns ``Finding`` records, one per
  action where parliament names the action; ``Allowed`` entries (tests/iam_lint_allowlist.yaml)
  say which findings are accepted, each with its reason.

How parliament treats the three kinds (it has no notion of policy kind; it lints any document):

* identity policies get every check: known actions, ARN format, the action's required resource
  types (``RESOURCE_MISMATCH``), condition keys documented for the action and their types,
  ``RESOURCE_STAR``/``RESOURCE_EFFECTIVELY_STAR``, duplicate Sids, S3 escalation patterns.
* resource policies get the same checks plus the ``Principal`` element (``UNKNOWN_PRINCIPAL``).
  A KMS key policy's ``Resource`` is ``"*"`` by AWS's rule ("this KMS key"), so its
  ``RESOURCE_STAR`` findings are allow-listed and nothing resource-typed is checked there.
* trust policies have no ``Resource`` element, which parliament reports as ``MALFORMED`` and then
  stops; the resource of ``sts:AssumeRole*`` is the role the trust policy belongs to, so the
  linter adds ``Resource: <that role's ARN>`` to each statement (``_as_trust_resource``) and every
  check above then applies (principal, action, condition keys for ``sts:AssumeRole``).
"""

from __future__ import annotations

import fnmatch
import importlib
import importlib.resources
import importlib.util
import itertools
import json
import re
import string
import sys
import types
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DEFAULT_ACCOUNT = "123456789012"
DEFAULT_REGION = "us-east-1"
PARTITION = "aws"
URL_SUFFIX = "amazonaws.com"
NO_VALUE = object()
"""``Ref: AWS::NoValue``: the list item or key holding it is dropped."""


class RenderError(ValueError):
    """An intrinsic the renderer does not know how to turn into a concrete value."""


@dataclass(frozen=True)
class StackTemplate:
    """One synthesized stack: the app it belongs to (exports resolve inside it), its env."""

    app: str
    name: str
    template: Mapping[str, Any]
    account: str = DEFAULT_ACCOUNT
    region: str = DEFAULT_REGION

    @property
    def resources(self) -> Mapping[str, Any]:
        resources: Mapping[str, Any] = self.template.get("Resources", {})
        return resources


@dataclass(frozen=True)
class _Kind:
    """How CloudFormation's ``Ref``/``Fn::GetAtt`` of one resource type look.

    ``arn`` is a format with ``{partition}``, ``{region}``, ``{account}``, ``{name}``, ``{id}``;
    ``ref`` is what ``Ref`` returns: ``name``, ``arn``, ``id`` (or another literal format);
    ``attrs`` maps ``Fn::GetAtt`` attributes to formats (``Arn`` is always ``arn``).
    """

    arn: str
    ref: str
    name_property: str | None = None
    attrs: Mapping[str, str] = field(default_factory=dict)
    lower: bool = False  # generated names are lowercase (bucket names)


# The ARN formats are the ones the Service Authorization Reference lists for each resource type
# (https://docs.aws.amazon.com/service-authorization/latest/reference/reference_policies_actions-resources-contextkeys.html),
# and Ref/GetAtt are what each resource's "Return values" section in the CloudFormation
# resource reference documents (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-template-resource-type-ref.html).
KINDS: dict[str, _Kind] = {
    "AWS::S3::Bucket": _Kind(
        "arn:{partition}:s3:::{name}",
        "name",
        "BucketName",
        {
            "DomainName": "{name}.s3.{url_suffix}",
            "RegionalDomainName": "{name}.s3.{region}.{url_suffix}",
        },
        lower=True,
    ),
    "AWS::KMS::Key": _Kind(
        "arn:{partition}:kms:{region}:{account}:key/{id}", "id", None, {"KeyId": "{id}"}
    ),
    "AWS::KMS::Alias": _Kind("arn:{partition}:kms:{region}:{account}:{name}", "name", "AliasName"),
    "AWS::IAM::Role": _Kind(
        "arn:{partition}:iam::{account}:role/{name}", "name", "RoleName", {"RoleId": "AROA{id12}"}
    ),
    "AWS::IAM::ManagedPolicy": _Kind(
        "arn:{partition}:iam::{account}:policy/{name}", "arn", "ManagedPolicyName"
    ),
    "AWS::IAM::User": _Kind("arn:{partition}:iam::{account}:user/{name}", "name", "UserName"),
    "AWS::Logs::LogGroup": _Kind(
        "arn:{partition}:logs:{region}:{account}:log-group:{name}:*", "name", "LogGroupName"
    ),
    "AWS::Lambda::Function": _Kind(
        "arn:{partition}:lambda:{region}:{account}:function:{name}", "name", "FunctionName"
    ),
    "AWS::StepFunctions::StateMachine": _Kind(
        "arn:{partition}:states:{region}:{account}:stateMachine:{name}",
        "arn",
        "StateMachineName",
        {"Name": "{name}"},
    ),
    "AWS::SNS::Topic": _Kind(
        "arn:{partition}:sns:{region}:{account}:{name}",
        "arn",
        "TopicName",
        {"TopicArn": "arn:{partition}:sns:{region}:{account}:{name}", "TopicName": "{name}"},
    ),
    "AWS::SQS::Queue": _Kind(
        "arn:{partition}:sqs:{region}:{account}:{name}",
        "https://sqs.{region}.{url_suffix}/{account}/{name}",
        "QueueName",
        {"QueueName": "{name}", "QueueUrl": "https://sqs.{region}.{url_suffix}/{account}/{name}"},
    ),
    "AWS::SageMaker::Model": _Kind(
        "arn:{partition}:sagemaker:{region}:{account}:model/{name}",
        "arn",
        "ModelName",
        {"ModelName": "{name}"},
        lower=True,
    ),
    "AWS::SageMaker::EndpointConfig": _Kind(
        "arn:{partition}:sagemaker:{region}:{account}:endpoint-config/{name}",
        "arn",
        "EndpointConfigName",
        {"EndpointConfigName": "{name}"},
        lower=True,
    ),
    "AWS::SageMaker::Endpoint": _Kind(
        "arn:{partition}:sagemaker:{region}:{account}:endpoint/{name}",
        "arn",
        "EndpointName",
        {"EndpointName": "{name}"},
        lower=True,
    ),
    "AWS::CodeBuild::Project": _Kind(
        "arn:{partition}:codebuild:{region}:{account}:project/{name}", "name", "Name"
    ),
    "AWS::CodePipeline::Pipeline": _Kind(
        "arn:{partition}:codepipeline:{region}:{account}:{name}", "name", "Name"
    ),
    "AWS::ApiGateway::RestApi": _Kind(
        "arn:{partition}:apigateway:{region}::/restapis/{id10}",
        "{id10}",
        None,
        {"RootResourceId": "{id10}"},
    ),
    "AWS::ECR::Repository": _Kind(
        "arn:{partition}:ecr:{region}:{account}:repository/{name}", "name", "RepositoryName"
    ),
    "AWS::DynamoDB::Table": _Kind(
        "arn:{partition}:dynamodb:{region}:{account}:table/{name}", "name", "TableName"
    ),
    "AWS::Events::Rule": _Kind(
        "arn:{partition}:events:{region}:{account}:rule/{name}", "id", "Name"
    ),
    "AWS::SecretsManager::Secret": _Kind(
        "arn:{partition}:secretsmanager:{region}:{account}:secret:{name}-AbCdEf", "arn", "Name"
    ),
}

# Custom resources: attributes of the handlers this product ships.
CUSTOM_ATTRS: dict[str, dict[str, str]] = {
    # hf_towers/constructs/repack/runtime/handler/props.py: ATTR_KEY is the generated object key
    # (compressed) or key prefix ending in "/" (uncompressed), under <OutputPrefix>/<32 hex>/.
    "Custom::RepackedModelData": {
        "Key": "{OutputPrefix}/0123456789abcdef0123456789abcdef/{model_tar}",
        "S3Uri": "s3://{OutputBucket}/{OutputPrefix}/0123456789abcdef0123456789abcdef/{model_tar}",
        "ModelDataUrl": (
            "s3://{OutputBucket}/{OutputPrefix}/0123456789abcdef0123456789abcdef/{model_tar}"
        ),
    },
}

PSEUDO = ("AWS::Partition", "AWS::Region", "AWS::AccountId", "AWS::URLSuffix", "AWS::StackName")


class Renderer:
    """Renders intrinsics in the context of the stacks of one or more apps."""

    def __init__(self, stacks: Sequence[StackTemplate]) -> None:
        self._exports: dict[tuple[str, str], tuple[StackTemplate, Any]] = {}
        for stack in stacks:
            for output in stack.template.get("Outputs", {}).values():
                if "Export" not in output:
                    continue
                name = self.render(output["Export"]["Name"], stack)
                self._exports[(stack.app, str(name))] = (stack, output["Value"])
        self._busy: set[tuple[str, str, str]] = set()

    def render(
        self, value: Any, stack: StackTemplate, conditions: Mapping[str, bool] | None = None
    ) -> Any:
        """``value`` with every intrinsic replaced; ``conditions`` decide ``Fn::If``."""
        conditions = conditions or {}
        if isinstance(value, list):
            items = [self.render(item, stack, conditions) for item in value]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref" or key.startswith("Fn::"):
                return self._intrinsic(key, arg, stack, conditions)
        rendered = {k: self.render(v, stack, conditions) for k, v in value.items()}
        return {k: v for k, v in rendered.items() if v is not NO_VALUE}

    def _intrinsic(self, key: str, arg: Any, stack: StackTemplate, cond: Mapping[str, bool]) -> Any:
        if key == "Ref":
            return self._ref(str(arg), stack)
        if key == "Fn::GetAtt":
            logical, attr = arg.split(".", 1) if isinstance(arg, str) else arg
            return self._get_att(str(logical), str(self.render(attr, stack, cond)), stack)
        if key == "Fn::Join":
            separator, parts = arg
            rendered = self.render(parts, stack, cond)
            return str(separator).join(self._text(p, key) for p in _as_list(rendered))
        if key == "Fn::Sub":
            template, variables = (arg, {}) if isinstance(arg, str) else arg
            values = {k: self.render(v, stack, cond) for k, v in variables.items()}
            return self._sub(str(template), values, stack)
        if key == "Fn::ImportValue":
            name = str(self.render(arg, stack, cond))
            if (stack.app, name) not in self._exports:
                raise RenderError(
                    f"{stack.name}: Fn::ImportValue {name!r} is exported by no stack of {stack.app}"
                )
            owner, exported = self._exports[(stack.app, name)]
            return self.render(exported, owner, cond)
        if key == "Fn::If":
            name, when_true, when_false = arg
            if name not in stack.template.get("Conditions", {}):
                raise RenderError(f"{stack.name}: Fn::If names an unknown condition {name!r}")
            if name not in cond:
                raise RenderError(f"{stack.name}: no value given for condition {name!r}")
            return self.render(when_true if cond[name] else when_false, stack, cond)
        if key == "Fn::Select":
            index, items = arg
            rendered = _as_list(self.render(items, stack, cond))
            position = int(self.render(index, stack, cond))
            if not 0 <= position < len(rendered):
                raise RenderError(f"{stack.name}: Fn::Select index {position} out of {rendered}")
            return rendered[position]
        if key == "Fn::Split":
            separator, text = arg
            return self._text(self.render(text, stack, cond), key).split(str(separator))
        raise RenderError(f"{stack.name}: cannot render intrinsic {key} {json.dumps(arg)[:200]}")

    @staticmethod
    def _text(value: Any, where: str) -> str:
        if isinstance(value, (dict, list)) or value is NO_VALUE:
            raise RenderError(f"{where}: expected text, got {value!r}")
        return str(value)

    def _pseudo(self, name: str, stack: StackTemplate) -> str:
        return {
            "AWS::Partition": PARTITION,
            "AWS::Region": stack.region,
            "AWS::AccountId": stack.account,
            "AWS::URLSuffix": URL_SUFFIX,
            "AWS::StackName": stack.name,
        }[name]

    def _ref(self, target: str, stack: StackTemplate) -> Any:
        if target == "AWS::NoValue":
            return NO_VALUE
        if target in PSEUDO:
            return self._pseudo(target, stack)
        if target in stack.resources:
            kind, fields = self._fields(target, stack)
            return self._format(
                {"name": "{name}", "arn": kind.arn, "id": "{id}"}.get(kind.ref, kind.ref), fields
            )
        raise RenderError(
            f"{stack.name}: cannot render Ref {target!r} (a parameter or unknown name)"
        )

    def _get_att(self, logical: str, attr: str, stack: StackTemplate) -> Any:
        resource = stack.resources.get(logical)
        if resource is None:
            raise RenderError(f"{stack.name}: Fn::GetAtt of unknown resource {logical!r}")
        rtype = str(resource["Type"])
        if rtype in CUSTOM_ATTRS or rtype.startswith("Custom::"):
            formats = CUSTOM_ATTRS.get(rtype, {})
            if attr not in formats:
                raise RenderError(
                    f"{stack.name}: cannot render Fn::GetAtt {logical}.{attr} ({rtype})"
                )
            wanted = {f for _, f, _, _ in string.Formatter().parse(formats[attr]) if f}
            given = resource.get("Properties", {})
            props = {
                k: self._text(self.render(given[k], stack), f"{logical}.{k}")
                for k in wanted
                if k in given
            }
            compressed = self.render(given.get("Compressed", "true"), stack)
            props["model_tar"] = "model.tar.gz" if compressed == "true" else ""
            try:
                return formats[attr].format(**props)
            except KeyError as exc:
                raise RenderError(f"{stack.name}: {logical}.{attr} needs property {exc}") from exc
        kind, fields = self._fields(logical, stack)
        if attr == "Arn":
            return self._format(kind.arn, fields)
        if attr not in kind.attrs:
            raise RenderError(f"{stack.name}: cannot render Fn::GetAtt {logical}.{attr} ({rtype})")
        return self._format(kind.attrs[attr], fields)

    def _fields(self, logical: str, stack: StackTemplate) -> tuple[_Kind, dict[str, str]]:
        resource = stack.resources[logical]
        rtype = str(resource["Type"])
        kind = KINDS.get(rtype)
        if kind is None:
            raise RenderError(
                f"{stack.name}: no ARN format for {logical} of type {rtype}: add it to KINDS"
            )
        name = logical.lower() if kind.lower else logical
        if kind.name_property and kind.name_property in resource.get("Properties", {}):
            busy = (stack.app, stack.name, logical)
            if busy in self._busy:
                raise RenderError(f"{stack.name}: {logical}'s name refers to itself")
            self._busy.add(busy)
            try:
                name = self._text(
                    self.render(resource["Properties"][kind.name_property], stack), logical
                )
            finally:
                self._busy.discard(busy)
        ident = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{stack.app}/{stack.name}/{logical}"))
        return kind, {
            "partition": PARTITION,
            "region": stack.region,
            "account": stack.account,
            "url_suffix": URL_SUFFIX,
            "name": name,
            "id": ident,
            "id10": ident.replace("-", "")[:10],
            "id12": ident.replace("-", "")[:17].upper(),
        }

    @staticmethod
    def _format(template: str, fields: Mapping[str, str]) -> str:
        return template.format(**fields)

    def _sub(self, template: str, values: Mapping[str, Any], stack: StackTemplate) -> str:
        def replace(match: re.Match[str]) -> str:
            body = match.group(1)
            if body.startswith("!"):
                return "${" + body[1:] + "}"
            if body in values:
                return self._text(values[body], "Fn::Sub")
            if body in PSEUDO:
                return self._pseudo(body, stack)
            if "." in body:
                logical, attr = body.split(".", 1)
                return self._text(self._get_att(logical, attr, stack), "Fn::Sub")
            return self._text(self._ref(body, stack), "Fn::Sub")

        return re.sub(r"\$\{([^}]*)\}", replace, template)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# --- collecting documents ---------------------------------------------------------------------

IDENTITY, TRUST, RESOURCE = "identity", "trust", "resource"

# Resource policies: (resource type, property holding the document). Lambda permissions and
# EventBridge bus policies are single statements, not documents: a template holding one shows up
# in ``policy_documents``' uncollected list (a ``Statement`` key) and fails the run.
RESOURCE_POLICIES: dict[str, str] = {
    "AWS::S3::BucketPolicy": "PolicyDocument",
    "AWS::KMS::Key": "KeyPolicy",
    "AWS::SNS::TopicPolicy": "PolicyDocument",
    "AWS::SQS::QueuePolicy": "PolicyDocument",
    "AWS::Logs::ResourcePolicy": "PolicyDocument",
    "AWS::ECR::Repository": "RepositoryPolicyText",
    "AWS::ApiGateway::RestApi": "Policy",
    "AWS::SecretsManager::ResourcePolicy": "ResourcePolicy",
}
IDENTITY_POLICY_TYPES = ("AWS::IAM::ManagedPolicy", "AWS::IAM::Policy")
PRINCIPAL_TYPES = ("AWS::IAM::Role", "AWS::IAM::User", "AWS::IAM::Group")


@dataclass(frozen=True)
class PolicyDocument:
    stack: StackTemplate
    logical_id: str
    resource_type: str
    where: str  # e.g. "PolicyDocument", "Policies[0].PolicyDocument", "AssumeRolePolicyDocument"
    kind: str  # IDENTITY, TRUST or RESOURCE
    document: Any

    @property
    def label(self) -> str:
        return f"{self.stack.app} {self.stack.name} {self.logical_id}.{self.where}"


def policy_documents(stack: StackTemplate) -> tuple[list[PolicyDocument], list[str]]:
    """Every policy document of ``stack``, and the places holding a ``Statement`` not collected."""
    found: list[PolicyDocument] = []
    collected: set[tuple[str, str]] = set()

    def add(logical: str, rtype: str, where: str, kind: str, document: Any) -> None:
        found.append(PolicyDocument(stack, logical, rtype, where, kind, document))
        collected.add((logical, where))

    for logical, resource in stack.resources.items():
        rtype, props = str(resource["Type"]), resource.get("Properties", {})
        if rtype in IDENTITY_POLICY_TYPES:
            add(logical, rtype, "PolicyDocument", IDENTITY, props["PolicyDocument"])
        if rtype in PRINCIPAL_TYPES:
            for index, inline in enumerate(props.get("Policies", [])):
                add(
                    logical,
                    rtype,
                    f"Policies[{index}].PolicyDocument",
                    IDENTITY,
                    inline["PolicyDocument"],
                )
        if rtype == "AWS::IAM::Role":
            add(
                logical, rtype, "AssumeRolePolicyDocument", TRUST, props["AssumeRolePolicyDocument"]
            )
        if rtype in RESOURCE_POLICIES and RESOURCE_POLICIES[rtype] in props:
            document = props[RESOURCE_POLICIES[rtype]]
            if isinstance(document, str):  # Logs resource policies are JSON text
                document = json.loads(document)
            add(logical, rtype, RESOURCE_POLICIES[rtype], RESOURCE, document)
    uncollected = [
        f"{stack.app} {stack.name} {logical}.{where}"
        for logical, resource in stack.resources.items()
        for where in _statement_paths(resource.get("Properties", {}), "")
        if (logical, where) not in collected
    ]
    return found, uncollected


def _statement_paths(value: Any, path: str) -> Iterator[str]:
    """Paths (``A.B[0].C``) of the dicts holding a ``Statement`` key, outermost only."""
    if isinstance(value, dict):
        if "Statement" in value:
            yield path
            return
        for key, item in value.items():
            yield from _statement_paths(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _statement_paths(item, f"{path}[{index}]")


def condition_names(value: Any) -> set[str]:
    """Names of the conditions ``Fn::If`` uses anywhere in ``value``."""
    if isinstance(value, list):
        return set().union(*(condition_names(v) for v in value)) if value else set()
    if isinstance(value, dict):
        names = {str(value["Fn::If"][0])} if "Fn::If" in value else set()
        return names.union(*(condition_names(v) for v in value.values()))
    return set()


def rendered_variants(renderer: Renderer, doc: PolicyDocument) -> list[Any]:
    """The document rendered once per combination of the ``Fn::If`` conditions it uses."""
    names = sorted(condition_names(doc.document))
    variants = []
    for values in itertools.product((True, False), repeat=len(names)):
        rendered = renderer.render(doc.document, doc.stack, dict(zip(names, values, strict=True)))
        if doc.kind == TRUST:
            rendered = _as_trust_resource(
                rendered, renderer.render({"Fn::GetAtt": [doc.logical_id, "Arn"]}, doc.stack)
            )
        if rendered not in variants:
            variants.append(rendered)
    return variants


def _as_trust_resource(document: dict[str, Any], role_arn: str) -> dict[str, Any]:
    """A trust policy with ``Resource: <its role>`` on each statement (see the module docstring)."""
    statements = [
        {**statement, "Resource": role_arn}
        if "Resource" not in statement and "NotResource" not in statement
        else statement
        for statement in _as_list(document.get("Statement", []))
    ]
    return {**document, "Statement": statements}


# --- findings and the allow-list -------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    issue: str
    label: str  # app, stack, logical id and property of the document
    stack: str
    resource_type: str
    kind: str
    sid: str
    actions: tuple[str, ...]
    written: tuple[str, ...]  # the statement's Action entries covering ``actions`` (s3:List*)
    resources: tuple[str, ...]
    detail: str

    def __str__(self) -> str:
        return (
            f"{self.issue} in {self.label} (statement {self.sid or '-'}): actions "
            f"{', '.join(self.actions) or '-'} on {', '.join(self.resources) or '-'}: {self.detail}"
        )


def import_parliament() -> Any:
    """``parliament``, importable with the venv's setuptools.

    parliament 1.6.4 imports ``pkg_resources`` only for ``resource_filename`` (the paths of its
    bundled ``iam_definition.json`` and ``config.yaml``); setuptools 81+ no longer ships
    ``pkg_resources``. Rather than pin an old setuptools for every tool in the venv, this gives
    parliament that one function, answered by ``importlib.resources``.
    """
    if "pkg_resources" not in sys.modules and importlib.util.find_spec("pkg_resources") is None:
        shim = types.ModuleType("pkg_resources")

        def resource_filename(package: str, name: str) -> str:
            return str(importlib.resources.files(package) / name)

        shim.resource_filename = resource_filename  # type: ignore[attr-defined]
        sys.modules["pkg_resources"] = shim
    parliament = importlib.import_module("parliament")
    return parliament


_ACTION_IN_DETAIL = re.compile(r"for action ([\w-]+:[\w*-]+)|Unknown action ([\w-]+:[\w*-]+)")


def lint(renderer: Renderer, doc: PolicyDocument) -> list[Finding]:
    """parliament's findings for every rendered variant of ``doc`` (deduplicated)."""
    parliament = import_parliament()
    findings: list[Finding] = []
    for rendered in rendered_variants(renderer, doc):
        policy = parliament.analyze_policy_string(
            json.dumps(rendered), ignore_private_auditors=True
        )
        statements = _as_list(rendered.get("Statement", []))
        for raw in policy._findings:  # policy-level findings (duplicate Sid, escalation, malformed)
            findings.append(_finding(raw.issue, raw.detail, doc, {}, ()))
        for statement, parsed in zip(statements, policy.statements, strict=False):
            for raw in parsed.findings:
                for actions in _actions_of(raw, statement):
                    findings.append(_finding(raw.issue, raw.detail, doc, statement, actions))
    return list(dict.fromkeys(findings))


def _actions_of(raw: Any, statement: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """One tuple per action parliament names in the finding, else the statement's actions."""
    detail = raw.detail
    if (
        isinstance(detail, list)
        and detail
        and all(isinstance(d, dict) and "action" in d for d in detail)
    ):
        return [(str(d["action"]),) for d in detail]  # RESOURCE_MISMATCH
    if raw.issue == "RESOURCE_STAR" and isinstance(detail, list):
        return [(str(action),) for action in detail]
    match = _ACTION_IN_DETAIL.search(str(detail or ""))
    if match:
        return [(match.group(1) or match.group(2),)]
    return [
        tuple(str(a) for a in _as_list(statement.get("Action", statement.get("NotAction", []))))
    ]


def _finding(
    issue: str,
    detail: Any,
    doc: PolicyDocument,
    statement: Mapping[str, Any],
    actions: tuple[str, ...],
) -> Finding:
    resources = _as_list(statement.get("Resource", statement.get("NotResource", [])))
    listed = [str(a) for a in _as_list(statement.get("Action", statement.get("NotAction", [])))]
    written = tuple(
        pattern
        for pattern in listed
        if any(fnmatch.fnmatchcase(a.lower(), pattern.lower()) for a in actions)
    )
    return Finding(
        issue=issue,
        label=doc.label,
        stack=doc.stack.name,
        resource_type=doc.resource_type,
        kind=doc.kind,
        sid=str(statement.get("Sid", "")),
        actions=actions,
        written=written,
        resources=tuple(str(r) for r in resources),
        detail=json.dumps(detail, sort_keys=True, default=str)
        if not isinstance(detail, str)
        else detail,
    )


@dataclass(frozen=True)
class Allowed:
    """One allow-list entry: every given field must match (globs, case-insensitive)."""

    issue: str
    reason: str
    action: str = "*"
    written_as: str = ""  # exact (case-insensitive) Action entry of the statement, e.g. s3:List*
    resource: str = "*"
    kind: str = "*"
    resource_type: str = "*"
    stack: str = "*"
    document: str = "*"  # the finding's label: "<app> <stack> <logical id>.<property>"
    detail: str = "*"

    def matches(self, finding: Finding) -> bool:
        def glob(pattern: str, values: Sequence[str]) -> bool:
            return any(fnmatch.fnmatchcase(v.lower(), pattern.lower()) for v in values)

        return (
            self.issue == finding.issue
            and glob(self.action, finding.actions or ("",))
            and (
                not self.written_as
                or self.written_as.lower() in (w.lower() for w in finding.written)
            )
            and glob(self.resource, finding.resources or ("",))
            and glob(self.kind, (finding.kind,))
            and glob(self.resource_type, (finding.resource_type,))
            and glob(self.stack, (finding.stack,))
            and glob(self.document, (finding.label,))
            and glob(self.detail, (finding.detail,))
        )


ALLOWED_KEYS = {
    "issue",
    "reason",
    "action",
    "written_as",
    "resource",
    "kind",
    "resource_type",
    "stack",
    "document",
    "detail",
}


def load_allow_list(path: Path) -> list[Allowed]:
    """Entries of ``path``; a malformed entry raises ``ValueError`` naming the file, entry and key."""
    data = yaml.safe_load(path.read_text())
    entries = data.get("allowed") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise ValueError(f"{path}: expected a top-level 'allowed:' list of entries")
    allowed = []
    for index, entry in enumerate(entries):
        where = f"{path} allowed[{index}]"
        if not isinstance(entry, dict):
            raise ValueError(f"{where}: expected a mapping with issue/reason/..., got {entry!r}")
        unknown = set(entry) - ALLOWED_KEYS
        if unknown:
            raise ValueError(
                f"{where}: unknown key(s) {sorted(unknown)}; allowed keys: {sorted(ALLOWED_KEYS)}"
            )
        for key in ("issue", "reason"):
            if not str(entry.get(key) or "").strip():
                raise ValueError(f"{where}: '{key}' is required and must not be empty")
        allowed.append(Allowed(**{k: str(v) for k, v in entry.items()}))
    return allowed


def triage(
    findings: Sequence[Finding], allowed: Sequence[Allowed]
) -> tuple[list[Finding], list[Allowed]]:
    """(findings no entry allows, entries that allow no finding)."""
    unlisted = [f for f in findings if not any(a.matches(f) for a in allowed)]
    stale = [a for a in allowed if not any(a.matches(f) for f in findings)]
    return unlisted, stale
