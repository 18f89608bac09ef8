"""A newly approved package version reaches the templates only through the resolved file, and
the offline risk report shows it like any other change: the Model (and, for a repacked tower,
its artifact) is replaced, the EndpointConfig with it, the Endpoint updates in place."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App
from aws_cdk.assertions import Template

from hf_towers.config import parse_config
from hf_towers.config.packages import ResolvedPackage, ResolvedPackages, resolved_path
from hf_towers.environment import add_environment
from hf_towers.feature_flags import FEATURE_FLAGS
from hf_towers.risk.report import render_markdown
from hf_towers.risk.rules import WILL_FAIL, evaluate
from hf_towers.risk.template_diff import ENDPOINT_ROLLOUT, ChangeKind, diff_assemblies
from tests.synth_helpers import default_data

REGISTRY = "arn:aws:sagemaker:us-east-1:123456789012:model-package"


def _data() -> dict[str, Any]:
    data = default_data()
    text, qa = data["towers"]["text"], data["towers"]["qa"]
    del text["model_uri"], text["model_version"], qa["model_uri"]
    text["model_package"] = {"group": "hf-towers-dual-encoder"}
    qa["model_package"] = {"group": "hf-towers-qa"}
    data["towers"] = {"text": text, "qa": qa}
    return data


def _entry(group: str, version: int) -> ResolvedPackage:
    return ResolvedPackage(
        group=group,
        version=version,
        requested="latest-approved",
        model_package_arn=f"{REGISTRY}/{group}/{version}",
        model_data_url=f"s3://example-ml-registry/{group}/{version}/model.tar.gz",
        approval_status="Approved",
        resolved_at=datetime(2026, 12, 1, 12, tzinfo=UTC),
    )


def _templates(directory: Path, version: int) -> dict[str, dict[str, Any]]:
    directory.mkdir()
    towers = {
        "text": _entry("hf-towers-dual-encoder", version),
        "qa": _entry("hf-towers-qa", version),
    }
    resolved_path("dev", directory).write_text(
        ResolvedPackages(environment="dev", towers=towers).dumps()
    )
    app = App(context=FEATURE_FLAGS)
    deployed = add_environment(
        app, parse_config(_data(), "config/dev.yaml", resolved_dir=directory)
    )
    return {s.stack_name: dict(Template.from_stack(s).to_json()) for s in deployed.stacks}


@pytest.fixture(scope="module")
def bumped(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, Any]]:
    root = tmp_path_factory.mktemp("resolved")
    return _templates(root / "v7", 7), _templates(root / "v8", 8)


def _changes(diff: Any, rtype: str) -> list[Any]:
    return [c for c in diff.changes if c.resource_type == rtype]


def test_same_resolved_file_same_templates(tmp_path: Path) -> None:
    first, again = _templates(tmp_path / "a", 7), _templates(tmp_path / "b", 7)
    assert json.dumps(first, sort_keys=True) == json.dumps(again, sort_keys=True)


def test_a_new_version_replaces_model_and_config_and_updates_the_endpoint(
    bumped: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    old, new = bumped
    diffs = {d.stack: d for d in diff_assemblies(old, new)}
    text = diffs["hf-towers-dev-tower-text"]
    [repack] = _changes(text, "Custom::RepackedModelData")
    assert repack.kind is ChangeKind.REPLACED
    assert "SourceKey" in repack.create_only_changed
    for diff in (text, diffs["hf-towers-dev-tower-qa"]):
        [model] = _changes(diff, "AWS::SageMaker::Model")
        [config] = _changes(diff, "AWS::SageMaker::EndpointConfig")
        [endpoint] = _changes(diff, "AWS::SageMaker::Endpoint")
        assert model.kind is ChangeKind.REPLACED
        assert config.kind is ChangeKind.REPLACED
        assert endpoint.kind is ChangeKind.MODIFIED and ENDPOINT_ROLLOUT in endpoint.notes
    [qa_model] = _changes(diffs["hf-towers-dev-tower-qa"], "AWS::SageMaker::Model")
    assert "PrimaryContainer" in qa_model.create_only_changed
    assert diffs["hf-towers-dev-artifacts"].changes == ()


def test_the_report_shows_the_version_change(
    bumped: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    old, new = bumped
    diffs = diff_assemblies(old, new)
    findings = evaluate(diffs)
    assert [f for f in findings if f.severity == WILL_FAIL] == []
    report = render_markdown(diffs, findings, "`origin/main` (abc123)")
    rows = report.splitlines()
    replaced = [r for r in rows if r.startswith("| 🔁") and "AWS::SageMaker::Model" in r]
    assert len(replaced) == 2  # text and qa
    assert all("PrimaryContainer" in r for r in replaced)
    # The execution role now reads the new version's object, and only that.
    [policy] = [
        r
        for r in new["hf-towers-dev-tower-qa"]["Resources"].values()
        if r["Type"] == "AWS::IAM::ManagedPolicy"
    ]
    reads = [
        s["Resource"]
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if s["Action"] == "s3:GetObject"
    ]
    assert reads == ["arn:aws:s3:::example-ml-registry/hf-towers-qa/8/model.tar.gz"]
