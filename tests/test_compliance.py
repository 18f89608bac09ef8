"""The compliance gate: four cdk-nag packs, zero unacknowledged findings, no idle acknowledgement."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_s3 as s3

from hf_towers.compliance import add_nag_packs, qualified_rule_id
from hf_towers.feature_flags import FEATURE_FLAGS
from hf_towers.tools.synth_check import check
from tests.synth_helpers import (
    assert_packs_pass,
    build,
    declared_acknowledgements,
    default_data,
    used_acknowledgements,
)


def _synth(data: dict[str, Any], outdir: Path) -> tuple[App, dict[str, Any]]:
    app, _ = build(data, nag=True, outdir=outdir)
    app.synth()
    return app, json.loads((outdir / "validation-report.json").read_text())


def _model_only_retained() -> dict[str, Any]:
    data = default_data()
    data.update(removal_policy="retain", protected=True, account="123456789012", region="eu-west-1")
    for tower in data["towers"].values():
        tower["deploy_endpoint"] = False
    return data


def _uncompressed() -> dict[str, Any]:
    """One repacked tower with ``compressed_model_data: false`` (its ``<prefix>*`` read)."""
    data = default_data()
    data["towers"] = {"vision": {**data["towers"]["vision"], "compressed_model_data": False}}
    return data


VARIANTS = {
    "default": default_data,
    "model-only-retained": _model_only_retained,
    "uncompressed": _uncompressed,
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_stack_passes_all_packs_and_every_acknowledgement_is_used(
    variant: str, tmp_path: Path
) -> None:
    data = VARIANTS[variant]()
    app, report = _synth(data, tmp_path)
    assert_packs_pass(report)
    used = used_acknowledgements(report)
    declared = declared_acknowledgements(app)
    assert declared, "the default app acknowledges a few findings"
    assert declared - used == set(), "acknowledgements that match no finding: remove them"
    # cfn-lint on every synthesized template: zero errors, zero warnings.
    for stack in check(tmp_path):
        assert (stack.name, stack.lint_errors, stack.lint_warnings) == (stack.name, 0, 0)


def test_gate_rejects_a_non_compliant_resource(tmp_path: Path) -> None:
    app = App(context=FEATURE_FLAGS, outdir=str(tmp_path))
    stack = Stack(app, "Plain")
    s3.Bucket(stack, "Unencrypted")
    add_nag_packs(app)
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    report = json.loads((tmp_path / "validation-report.json").read_text())
    rules = {v["ruleName"] for p in report["pluginReports"] for v in p.get("violations", [])}
    assert {
        "AwsSolutions-S1",
        "HIPAA.Security-S3DefaultEncryptionKMS",
        "NIST.800.53.R5-S3BucketVersioningEnabled",
        "PCI.DSS.321-S3BucketLoggingEnabled",
    } <= rules


def test_rule_ids_are_qualified_with_their_pack() -> None:
    assert (
        qualified_rule_id("AwsSolutions-IAM5[Resource::*]")
        == "AwsSolutions::AwsSolutions-IAM5[Resource::*]"
    )
    assert qualified_rule_id("NIST.800.53.R5-S3BucketReplicationEnabled").startswith(
        "NIST.800.53.R5::"
    )
    with pytest.raises(ValueError, match="belongs to none of the packs"):
        qualified_rule_id("Serverless-LambdaTracing")
