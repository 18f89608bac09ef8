"""The delivery pipeline: stages in config order, approvals before protected environments,
smoke tests after each deployment, the test gate in the synth step; nag- and cfn-lint-clean."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from aws_cdk.assertions import Template

from hf_towers.config.pipeline import load_pipeline_environments
from hf_towers.pipeline.smoke import TINY_PNG_BASE64, payload, smoke_commands
from hf_towers.tools.synth_check import lint
from tests.pipeline.pipeline_helpers import CONNECTION, TOOLING, pipeline_config, synth_pipeline
from tests.synth_helpers import (
    assert_packs_pass,
    declared_acknowledgements,
    default_data,
    used_acknowledgements,
)

ENVS = {
    "dev": ("111111111111", "us-east-1", False),
    "staging": ("222222222222", "us-east-1", False),
    "prod": ("333333333333", "eu-west-1", True),
}


def _env_file(directory: Path, name: str) -> str:
    account, region, protected = ENVS[name]
    data = default_data()
    data.update(environment=name, account=account, region=region, protected=protected)
    data["removal_policy"] = "retain" if protected else "destroy"
    # One tower per environment keeps the app small; prod also gets the task model.
    towers = {"text": data["towers"]["text"]}
    if name == "prod":
        towers["qa"] = data["towers"]["qa"]
    data["towers"] = towers
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path.name


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    directory = tmp_path_factory.mktemp("pipeline")
    config = pipeline_config(
        [_env_file(directory, n) for n in ("dev", "staging", "prod")], branch="release"
    )
    return synth_pipeline(
        config, load_pipeline_environments(config, directory), directory / "cdk.out"
    )


def _stages(template: dict[str, Any]) -> list[dict[str, Any]]:
    (pipeline,) = [
        r for r in template["Resources"].values() if r["Type"] == "AWS::CodePipeline::Pipeline"
    ]
    return list(pipeline["Properties"]["Stages"])


def _buildspec(template: dict[str, Any], action: dict[str, Any]) -> str:
    project = action["Configuration"]["ProjectName"]["Ref"]
    return str(template["Resources"][project]["Properties"]["Source"]["BuildSpec"])


def test_source_synth_self_mutation_then_environments_in_config_order(
    built: dict[str, Any],
) -> None:
    names = [s["Name"] for s in _stages(built["template"])]
    assert names[:3] == ["Source", "Build", "UpdatePipeline"]
    assert [n for n in names if n in ENVS] == ["dev", "staging", "prod"]
    assert names.index("dev") > names.index("UpdatePipeline")
    (source,) = _stages(built["template"])[0]["Actions"]
    assert source["ActionTypeId"]["Provider"] == "CodeStarSourceConnection"
    assert source["Configuration"]["ConnectionArn"] == CONNECTION
    assert source["Configuration"]["FullRepositoryId"] == "my-org/hf-towers"
    assert source["Configuration"]["BranchName"] == "release"


def test_each_stage_deploys_into_its_own_account_and_region(built: dict[str, Any]) -> None:
    for stage in _stages(built["template"]):
        if stage["Name"] not in ENVS:
            continue
        account, region, _ = ENVS[stage["Name"]]
        deploys = [a for a in stage["Actions"] if a["ActionTypeId"]["Provider"] == "CloudFormation"]
        assert deploys, stage["Name"]
        for action in deploys:
            assert action.get("Region", "us-east-1") == region  # absent: the pipeline's region
            role = json.dumps(action["RoleArn"])
            assert f"cdk-hnb659fds-deploy-role-{account}-{region}" in role
            assert action["Configuration"]["StackName"].startswith(f"hf-towers-{stage['Name']}-")
    stacks = {s.stage_name: s for s in built["stack"].stages}
    assert {n: (s.account, s.region) for n, s in stacks.items()} == {
        n: (a, r) for n, (a, r, _) in ENVS.items()
    }
    # Stacks keep the names app.py gives them, so a manual deployment can be adopted.
    dev = stacks["dev"].deployed
    assert [s.stack_name for s in dev.stacks] == [
        "hf-towers-dev-artifacts",
        "hf-towers-dev-tower-text",
        "hf-towers-dev-access",
    ]


def test_manual_approval_only_before_protected_environments(built: dict[str, Any]) -> None:
    approvals = {
        stage["Name"]: [a for a in stage["Actions"] if a["ActionTypeId"]["Category"] == "Approval"]
        for stage in _stages(built["template"])
    }
    assert {n: len(a) for n, a in approvals.items() if a} == {"prod": 1}
    (prod,) = [s for s in _stages(built["template"]) if s["Name"] == "prod"]
    first_deploy = min(
        a["RunOrder"] for a in prod["Actions"] if a["ActionTypeId"]["Category"] == "Deploy"
    )
    assert approvals["prod"][0]["RunOrder"] < first_deploy
    assert set(built["stack"].approvals) == {"prod"}


def test_smoke_test_invokes_every_endpoint_after_the_deployment(built: dict[str, Any]) -> None:
    template = built["template"]
    for stage in _stages(template):
        if stage["Name"] not in ENVS:
            continue
        (smoke,) = [a for a in stage["Actions"] if a["Name"].startswith("SmokeTest")]
        last_deploy = max(
            a["RunOrder"] for a in stage["Actions"] if a["ActionTypeId"]["Category"] == "Deploy"
        )
        assert smoke["RunOrder"] > last_deploy
        variables = {
            v["name"]: v["value"]
            for v in json.loads(smoke["Configuration"]["EnvironmentVariables"])
        }
        expected = {"SMOKE_ROLE_ARN", "ENDPOINT_TEXT"} | (
            {"ENDPOINT_QA"} if stage["Name"] == "prod" else set()
        )
        assert set(variables) == expected
        assert all(v.startswith("#{") for v in variables.values())  # stack outputs
        spec = _buildspec(template, smoke)
        assert spec.count("aws sagemaker-runtime invoke-endpoint") == len(expected) - 1
        assert '--endpoint-name \\"$ENDPOINT_TEXT\\"' in spec
        account = ENVS[stage["Name"]][0]
    # The step may assume exactly the smoke-test roles of the target accounts.
    assumes = [
        s
        for r in template["Resources"].values()
        if r["Type"] == "AWS::IAM::Policy"
        for s in r["Properties"]["PolicyDocument"]["Statement"]
        if s["Action"] == "sts:AssumeRole" and "smoke-test" in json.dumps(s["Resource"])
    ]
    assert len(assumes) == 3
    assert account == "333333333333"


def test_smoke_role_trusts_only_the_pipeline_roles_and_may_only_invoke(
    built: dict[str, Any],
) -> None:
    stage = {s.stage_name: s for s in built["stack"].stages}["prod"]
    assert stage.smoke is not None
    template = Template.from_stack(stage.smoke)
    (role,) = template.find_resources("AWS::IAM::Role").values()
    assert role["Properties"]["RoleName"] == "hf-towers-prod-smoke-test"
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert json.dumps(trust["Principal"]).count(TOOLING) == 1
    assert trust["Condition"] == {
        "ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{TOOLING}:role/hf-towers-pipeline-*"}
    }
    (policy,) = template.find_resources("AWS::IAM::ManagedPolicy").values()
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Action"] == "sagemaker:InvokeEndpoint"
    assert sorted(json.dumps(r) for r in statement["Resource"]) == [
        json.dumps("arn:aws:sagemaker:eu-west-1:333333333333:endpoint/hf-towers-prod-qa"),
        json.dumps("arn:aws:sagemaker:eu-west-1:333333333333:endpoint/hf-towers-prod-text"),
    ]


def test_synth_step_runs_the_test_gate_then_synthesizes_the_pipeline_app(
    built: dict[str, Any],
) -> None:
    (build,) = [s for s in _stages(built["template"]) if s["Name"] == "Build"]
    (synth,) = build["Actions"]
    spec = json.loads(_buildspec(built["template"], synth))
    commands = spec["phases"]["build"]["commands"]
    assert commands == [
        "make test",
        'npx cdk synth -a ".venv/bin/python pipeline_app.py" -c pipeline=config/pipeline.yaml',
    ]
    assert spec["phases"]["install"]["runtime-versions"] == {"python": "3.11"}
    assert spec["artifacts"]["base-directory"] == "cdk.out"


def test_pipeline_is_nag_and_cfn_lint_clean(built: dict[str, Any]) -> None:
    out: Path = built["out"]
    report = json.loads((out / "validation-report.json").read_text())
    assert_packs_pass(report)
    used = used_acknowledgements(report)
    declared = declared_acknowledgements(built["app"])
    assert len(declared) > 50
    assert declared - used == set(), "acknowledgements that match no finding: remove them"
    templates = [*out.glob("*.template.json"), *out.glob("assembly-*/*.template.json")]
    assert len(templates) >= 2 + 3 * 4  # pipeline, cross-region support, 3 stages x 4 stacks
    for template in templates:
        errors, warnings, messages = lint(template)
        assert (template.name, errors, warnings) == (template.name, 0, 0), messages


def test_smoke_payloads_follow_the_inference_contract() -> None:
    from hf_towers.config import parse_config

    data = default_data()
    data["towers"]["t5"] = {
        "kind": "task",
        "hf_task": "text2text-generation",
        "model_uri": "s3://example-ml-artifacts/flan-t5/model.tar.gz",
        "instance_type": "ml.m5.xlarge",
    }
    data["towers"]["shadow"] = {**data["towers"]["text"], "deploy_endpoint": False}
    config = parse_config(data, "test")
    assert payload(config.towers["vision"]) == {"inputs": [TINY_PNG_BASE64]}
    assert payload(config.towers["text"]) == {"inputs": ["a photo of a red bicycle"]}
    assert set(payload(config.towers["qa"])["inputs"]) == {"question", "context"}
    assert payload(config.towers["t5"]) == {"inputs": "Deployment smoke test."}
    commands = smoke_commands(config)
    assert commands[:4] == [
        "set -euo pipefail",
        'aws configure set profile.smoke.role_arn "$SMOKE_ROLE_ARN"',
        "aws configure set profile.smoke.credential_source EcsContainer",
        "aws configure set profile.smoke.region us-east-1",
    ]
    invoked = [c for c in commands if c.startswith("aws sagemaker-runtime invoke-endpoint")]
    assert [c.split('"$')[1].split('"')[0] for c in invoked] == [
        "ENDPOINT_VISION",
        "ENDPOINT_TEXT",
        "ENDPOINT_QA",
        "ENDPOINT_T5",
    ]  # no endpoint, no smoke test: "shadow" is absent
