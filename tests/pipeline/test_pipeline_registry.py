"""Approve -> deploy: a pipeline whose environments deploy registry-backed towers starts on an
approved package version (EventBridge), resolves the registry before synth with a role that may
only read the groups' packages, and stays nag-, cfn-lint- and parliament-clean."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import pytest
import yaml
from aws_cdk import App, Environment

from hf_towers.config.packages import ResolvedPackage, ResolvedPackages, resolved_path
from hf_towers.config.pipeline import load_pipeline_environments
from hf_towers.feature_flags import FEATURE_FLAGS
from hf_towers.pipeline.pipeline_stack import PipelineStack
from hf_towers.pipeline.registry import DETAIL_TYPE
from hf_towers.tools.synth_check import lint as cfn_lint
from tests.iam_lint import (
    Renderer,
    StackTemplate,
    lint,
    load_allow_list,
    policy_documents,
    triage,
)
from tests.pipeline.pipeline_helpers import TOOLING, pipeline_config, synth_pipeline
from tests.synth_helpers import (
    assert_packs_pass,
    declared_acknowledgements,
    default_data,
    used_acknowledgements,
)
from tests.test_iam_lint import ALLOW_LIST

ENVS = {"dev": "111111111111", "prod": "333333333333"}
GROUPS = ["hf-towers-dual-encoder", "hf-towers-qa"]


def _entry(
    group: str, version: int, requested: Literal["latest-approved"] | int
) -> ResolvedPackage:
    return ResolvedPackage(
        group=group,
        version=version,
        requested=requested,
        model_package_arn=f"arn:aws:sagemaker:us-east-1:{TOOLING}:model-package/{group}/{version}",
        model_data_url=f"s3://example-ml-registry/{group}/{version}/model.tar.gz",
        approval_status="Approved",
        resolved_at=datetime(2026, 12, 1, 12, tzinfo=UTC),
    )


def _env_file(directory: Path, resolved: Path, name: str) -> str:
    data = default_data()
    data.update(environment=name, account=ENVS[name], protected=name == "prod")
    data["removal_policy"] = "retain" if name == "prod" else "destroy"
    text: dict[str, Any] = {"kind": "text", "instance_type": "ml.m5.xlarge"}
    text["model_package"] = {"group": GROUPS[0]}
    towers: dict[str, Any] = {"text": text}
    entries = {"text": _entry(GROUPS[0], 7, "latest-approved")}
    if name == "prod":
        towers["qa"] = {**data["towers"]["qa"], "model_package": {"group": GROUPS[1], "version": 2}}
        del towers["qa"]["model_uri"]
        entries["qa"] = _entry(GROUPS[1], 2, 2)
    data["towers"] = towers
    resolved_path(name, resolved).write_text(
        ResolvedPackages(environment=name, towers=entries).dumps()
    )
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path.name


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    directory = tmp_path_factory.mktemp("pipeline")
    resolved = directory / "resolved"
    resolved.mkdir()
    config = pipeline_config([_env_file(directory, resolved, n) for n in ENVS])
    environments = load_pipeline_environments(config, directory, resolved_dir=resolved)
    return synth_pipeline(config, environments, directory / "cdk.out")


def _of_type(template: dict[str, Any], rtype: str) -> dict[str, Any]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == rtype}


def test_an_approved_version_of_a_deployed_group_starts_the_pipeline(
    built: dict[str, Any],
) -> None:
    template = built["template"]
    (rule,) = _of_type(template, "AWS::Events::Rule").values()
    props = rule["Properties"]
    assert props["EventPattern"] == {
        "source": ["aws.sagemaker"],
        "detail-type": [DETAIL_TYPE],
        "detail": {"ModelPackageGroupName": GROUPS, "ModelApprovalStatus": ["Approved"]},
    }
    assert "EventBusName" not in props  # the default bus of the registry (tooling) account
    (target,) = props["Targets"]
    (pipeline_id,) = _of_type(template, "AWS::CodePipeline::Pipeline")
    assert json.dumps(target["Arn"]).count(pipeline_id) == 1
    role_id = target["RoleArn"]["Fn::GetAtt"][0]
    role = template["Resources"][role_id]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "events.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": TOOLING}}
    # One customer-managed policy, exactly StartPipelineExecution on this pipeline; no inline.
    assert "Policies" not in role
    (attached,) = role["ManagedPolicyArns"]
    policy = template["Resources"][attached["Ref"]]
    assert policy["Type"] == "AWS::IAM::ManagedPolicy"
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Action"] == "codepipeline:StartPipelineExecution"
    assert json.dumps(statement["Resource"]).count(pipeline_id) == 1
    inline = [
        p
        for p in _of_type(template, "AWS::IAM::Policy").values()
        if {"Ref": role_id} in p["Properties"].get("Roles", [])
    ]
    assert inline == []


def _synth_project(template: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    stages = next(iter(_of_type(template, "AWS::CodePipeline::Pipeline").values()))
    (build,) = [s for s in stages["Properties"]["Stages"] if s["Name"] == "Build"]
    (action,) = build["Actions"]
    project = template["Resources"][action["Configuration"]["ProjectName"]["Ref"]]
    return project, json.loads(project["Properties"]["Source"]["BuildSpec"])


def test_the_synth_step_resolves_the_registry_before_synth(built: dict[str, Any]) -> None:
    _, spec = _synth_project(built["template"])
    assert spec["phases"]["build"]["commands"] == [
        "make test",
        ".venv/bin/python main.py resolve-packages --region us-east-1 "
        "--config dev.yaml --config prod.yaml",
        'npx cdk synth -a ".venv/bin/python pipeline_app.py" -c pipeline=config/pipeline.yaml',
    ]


def test_the_synth_role_may_only_read_the_groups_packages(built: dict[str, Any]) -> None:
    template = built["template"]
    project, _ = _synth_project(template)
    role_id = project["Properties"]["ServiceRole"]["Fn::GetAtt"][0]
    statements = [
        s
        for p in _of_type(template, "AWS::IAM::Policy").values()
        if {"Ref": role_id} in p["Properties"]["Roles"]
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if "sagemaker" in json.dumps(s["Action"])
    ]
    (statement,) = statements
    assert sorted(statement["Action"]) == [
        "sagemaker:DescribeModelPackage",
        "sagemaker:ListModelPackages",
    ]
    resources = [json.dumps(r) for r in statement["Resource"]]
    assert len(resources) == 2
    for group, resource in zip(GROUPS, resources, strict=True):
        assert f":model-package/{group}/*" in resource
    # Nothing else of SageMaker anywhere in the pipeline stack's identity policies.
    actions = [
        action
        for p in _of_type(template, "AWS::IAM::Policy").values()
        for st in p["Properties"]["PolicyDocument"]["Statement"]
        for action in ([st["Action"]] if isinstance(st["Action"], str) else st["Action"])
    ]
    assert sorted(a for a in actions if a.startswith("sagemaker:")) == sorted(statement["Action"])


def test_a_registry_version_deploys_its_model_data_in_every_stage(built: dict[str, Any]) -> None:
    stages = {s.stage_name: s for s in built["stack"].stages}
    prod = stages["prod"].deployed.towers["qa"]
    from aws_cdk.assertions import Template

    model = next(iter(Template.from_stack(prod).find_resources("AWS::SageMaker::Model").values()))
    container = model["Properties"]["PrimaryContainer"]
    assert container["ModelDataUrl"] == "s3://example-ml-registry/hf-towers-qa/2/model.tar.gz"
    assert container["Environment"]["MODEL_VERSION"] == "2"


def test_no_rule_without_registry_towers_or_when_switched_off(tmp_path: Path) -> None:
    data = default_data()
    data.update(account="111111111111", towers={"text": data["towers"]["text"]})
    (tmp_path / "dev.yaml").write_text(yaml.safe_dump(data))
    config = pipeline_config(["dev.yaml"], deploy_on_approval=False)
    app = App(context=FEATURE_FLAGS)
    stack = PipelineStack(
        app,
        "p",
        config=config,
        environments=load_pipeline_environments(config, tmp_path),
        env=Environment(account=TOOLING, region="us-east-1"),
    )
    assert stack.approval_rule is None and stack.package_groups == []


def test_pipeline_with_registry_is_nag_cfn_lint_and_parliament_clean(
    built: dict[str, Any],
) -> None:
    out: Path = built["out"]
    report = json.loads((out / "validation-report.json").read_text())
    assert_packs_pass(report)
    assert declared_acknowledgements(built["app"]) - used_acknowledgements(report) == set()
    errors, warnings, messages = cfn_lint(out / "hf-towers-pipeline.template.json")
    assert (errors, warnings) == (0, 0), messages
    stack = StackTemplate("registry-pipeline", "hf-towers-pipeline", built["template"], TOOLING)
    documents, uncollected = policy_documents(stack)
    assert uncollected == []
    renderer = Renderer([stack])
    findings = [f for d in documents for f in lint(renderer, d)]
    # parliament: nothing beyond what the allow-list carries for CDK Pipelines' own roles.
    unlisted, _ = triage(findings, load_allow_list(ALLOW_LIST))
    assert unlisted == []
    # The registry statements were among the documents linted.
    assert any("sagemaker:DescribeModelPackage" in json.dumps(d.document) for d in documents)
    assert any("codepipeline:StartPipelineExecution" in json.dumps(d.document) for d in documents)
