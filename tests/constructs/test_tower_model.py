"""``TowerModel`` of a registry-backed tower: the resolved package's data, recorded on the Model;
the committed example (config/examples/registry.yaml + config/resolved/registry.packages.json)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import App
from aws_cdk.assertions import Template

from hf_towers.config import load_config
from hf_towers.constructs.tower_model import PACKAGE_ARN_TAG, PACKAGE_VERSION_TAG
from hf_towers.environment import add_environment
from hf_towers.feature_flags import FEATURE_FLAGS
from tests.synth_helpers import REPO

EXAMPLE = REPO / "config" / "examples" / "registry.yaml"
ARN = "arn:aws:sagemaker:us-east-1:123456789012:model-package"


@pytest.fixture(scope="module")
def stacks() -> dict[str, Template]:
    app = App(context=FEATURE_FLAGS)
    deployed = add_environment(app, load_config(EXAMPLE))
    return {name: Template.from_stack(stack) for name, stack in deployed.towers.items()}


def _model(template: Template) -> dict[str, Any]:
    (model,) = template.find_resources("AWS::SageMaker::Model").values()
    return dict(model["Properties"])


def _tags(model: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in model["Tags"]}


def test_a_task_model_reads_the_package_data_with_the_towers_image(
    stacks: dict[str, Template],
) -> None:
    model = _model(stacks["qa"])
    container = model["PrimaryContainer"]
    assert container["ModelDataUrl"] == "s3://example-ml-registry/hf-towers-qa/3/model.tar.gz"
    assert "ModelPackageName" not in container
    assert "huggingface-pytorch-inference" in container["Image"]
    assert container["Environment"]["MODEL_VERSION"] == "3"
    assert container["Environment"]["MODEL_PACKAGE_ARN"] == f"{ARN}/hf-towers-qa/3"
    tags = _tags(model)
    assert tags[PACKAGE_ARN_TAG] == f"{ARN}/hf-towers-qa/3"
    assert tags[PACKAGE_VERSION_TAG] == "3"


def test_the_execution_role_may_read_only_the_package_artifact(
    stacks: dict[str, Template],
) -> None:
    (policy,) = stacks["qa"].find_resources("AWS::IAM::ManagedPolicy").values()
    s3 = [
        s
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if json.dumps(s["Action"]).count("s3:")
    ]
    assert s3 == [
        {
            "Action": "s3:GetObject",
            "Effect": "Allow",
            "Resource": "arn:aws:s3:::example-ml-registry/hf-towers-qa/3/model.tar.gz",
        }
    ]


def test_a_text_tower_repacks_the_package_data(stacks: dict[str, Template]) -> None:
    template = stacks["text"]
    (repack,) = template.find_resources("Custom::RepackedModelData").values()
    assert repack["Properties"]["SourceBucket"] == "example-ml-registry"
    assert repack["Properties"]["SourceKey"] == "hf-towers-dual-encoder/7/model.tar.gz"
    model = _model(template)
    # The Model reads the repacked copy (with code/) in the artifact bucket, not the package.
    assert "example-ml-registry" not in json.dumps(model["PrimaryContainer"]["ModelDataUrl"])
    assert model["PrimaryContainer"]["Environment"]["MODEL_VERSION"] == "7"
    assert _tags(model)[PACKAGE_VERSION_TAG] == "7"
    roles = template.find_resources("AWS::IAM::Role")
    (execution,) = [
        k for k, r in roles.items() if "sagemaker.amazonaws.com" in json.dumps(r["Properties"])
    ]
    policies = template.find_resources("AWS::IAM::ManagedPolicy")
    attached = {
        k
        for k, p in policies.items()
        if {"Ref": execution} in p["Properties"].get("Roles", [])
        or {"Ref": k} in roles[execution]["Properties"].get("ManagedPolicyArns", [])
    }
    assert attached, "the execution role's policy"
    readers = {k for k, p in policies.items() if "example-ml-registry" in json.dumps(p)}
    assert readers, "the repack function reads the package artifact"
    assert readers & attached == set()  # ... and only the repack function does


def test_towers_without_a_package_keep_their_model_shape() -> None:
    from tests.synth_helpers import default_data, templates

    model = next(
        r
        for r in templates(default_data())["hf-towers-dev-tower-qa"]["Resources"].values()
        if r["Type"] == "AWS::SageMaker::Model"
    )
    assert "MODEL_PACKAGE_ARN" not in model["Properties"]["PrimaryContainer"]["Environment"]
    assert PACKAGE_ARN_TAG not in json.dumps(model["Properties"].get("Tags", []))
