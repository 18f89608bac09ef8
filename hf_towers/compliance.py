"""Compliance gate: cdk-nag rule packs on the whole app, and narrow acknowledgements.

cdk-nag 3 runs as a CDK policy-validation plugin (``Validations.of(app).add_plugins``):
``app.synth()`` fails with a report if any finding is not acknowledged.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Acknowledgment, App, Validations
from cdk_nag import AwsSolutionsChecks, HIPAASecurityChecks, NIST80053R5Checks, PCIDSS321Checks
from constructs import IConstruct

ACKNOWLEDGED_METADATA = "hf-towers:acknowledged"
PACKS = ("AwsSolutions", "HIPAA.Security", "NIST.800.53.R5", "PCI.DSS.321")


def add_nag_packs(app: App) -> None:
    """Register the four packs the product promises: AwsSolutions, HIPAA, NIST 800-53 R5, PCI DSS 3.2.1."""
    validations = Validations.of(app)
    validations.add_plugins(AwsSolutionsChecks(app))
    validations.add_plugins(HIPAASecurityChecks(app))
    validations.add_plugins(NIST80053R5Checks(app))
    validations.add_plugins(PCIDSS321Checks(app))


def acknowledge(construct: IConstruct, reason: str, *rule_ids: str) -> None:
    """Acknowledge ``rule_ids`` (e.g. ``AwsSolutions-IAM5[Resource::*]``) on ``construct`` only."""
    if not reason.strip():
        raise ValueError("an acknowledgement needs a reason")
    validations = Validations.of(construct)
    for rule_id in rule_ids:
        qualified = qualified_rule_id(rule_id)
        validations.acknowledge(Acknowledgment(id=qualified, reason=reason))
        # Recorded so tests can prove every acknowledgement matches a real finding.
        construct.node.add_metadata(ACKNOWLEDGED_METADATA, qualified)


def qualified_rule_id(rule_id: str) -> str:
    """``HIPAA.Security-S3BucketLoggingEnabled`` -> ``HIPAA.Security::HIPAA.Security-S3...``.

    CDK validation keys acknowledgements by ``<plugin>::<rule>``; the plugin is the pack name.
    """
    for pack in PACKS:
        if rule_id.startswith(f"{pack}-"):
            return f"{pack}::{rule_id}"
    raise ValueError(f"{rule_id!r} belongs to none of the packs {PACKS}: check the rule id")


def _render(value: Any) -> str:
    """A policy value the way cdk-nag prints it: ``<Logical.Attr>``, ``<Logical>``, export, text."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        if "Fn::Join" in value:
            sep, parts = value["Fn::Join"]
            return str(sep).join(_render(p) for p in parts)
        if "Fn::GetAtt" in value:
            logical, attr = value["Fn::GetAtt"]
            return f"<{logical}.{attr}>"
        if "Ref" in value:
            return f"<{value['Ref']}>"
        if "Fn::ImportValue" in value:  # cdk-nag prints an import as its export name
            return _render(value["Fn::ImportValue"])
    return str(value)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def iam5_findings(document: dict[str, Any]) -> list[str]:
    """The ``AwsSolutions-IAM5[...]`` ids cdk-nag reports for a resolved policy document."""
    found: list[str] = []
    for statement in _as_list(document.get("Statement", [])):
        if statement.get("Effect") != "Allow":
            continue
        for action in _as_list(statement.get("Action", [])):
            if isinstance(action, str) and "*" in action:
                found.append(f"AwsSolutions-IAM5[Action::{action}]")
        for resource in _as_list(statement.get("Resource", [])):
            rendered = _render(resource)
            if "*" in rendered:
                found.append(f"AwsSolutions-IAM5[Resource::{rendered}]")
    return list(dict.fromkeys(found))
