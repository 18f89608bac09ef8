"""Tower stacks: execution role (exact statements), Model, EndpointConfig, Endpoint, outputs."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Template

from tests.synth_helpers import build, default_data

VISION = "hf-towers-dev-tower-vision"
TEXT = "hf-towers-dev-tower-text"
QA = "hf-towers-dev-tower-qa"


def _only(template: dict[str, Any], resource_type: str, prefix: str = "") -> dict[str, Any]:
    """The one resource of ``resource_type`` whose logical id starts with ``prefix``."""
    found = [
        r
        for k, r in template["Resources"].items()
        if r["Type"] == resource_type and k.startswith(prefix)
    ]
    assert len(found) == 1, f"expected one {resource_type}, found {len(found)}"
    resource: dict[str, Any] = found[0]
    return resource


def _statements(template: dict[str, Any]) -> dict[str, Any]:
    """The execution role's statements by Sid; the model-data ones (no Sid) as a list."""
    policy = _only(template, "AWS::IAM::ManagedPolicy", "ExecutionRole")
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    by_sid: dict[str, Any] = {s["Sid"]: s for s in statements if "Sid" in s}
    by_sid["model-data"] = [s for s in statements if "Sid" not in s]
    return by_sid


def test_execution_role_trusts_only_sagemaker_of_this_account(
    default_templates: dict[str, Any],
) -> None:
    role = _only(default_templates[VISION], "AWS::IAM::Role", "ExecutionRole")
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Action": "sts:AssumeRole",
            "Effect": "Allow",
            "Principal": {"Service": "sagemaker.amazonaws.com"},
            "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}},
        }
    ]
    assert "ManagedPolicyArns" not in role["Properties"]  # no AmazonSageMakerFullAccess
    assert "Policies" not in role["Properties"]  # no inline policies


def test_execution_role_statements_are_exactly_least_privilege(
    default_templates: dict[str, Any],
) -> None:
    statements = _statements(default_templates[VISION])
    assert set(statements) == {
        "model-data",
        "DecryptArtifacts",
        "PullImage",
        "EcrLogin",
        "PutSageMakerMetrics",
        "WriteEndpointLogs",
    }
    # The repacked artifact only: its exact key in the artifact bucket (a deploy-time value).
    read, decrypt = statements["model-data"]
    assert read["Action"] == "s3:GetObject"
    bucket, separator, key = read["Resource"]["Fn::Join"][1]
    assert bucket == {"Fn::ImportValue": "hf-towers-dev-artifacts:ArtifactBucketArn"}
    assert separator == "/"
    assert key == {"Fn::GetAtt": ["ModelDataBA9514DB", "Key"]}
    assert decrypt["Action"] == "kms:Decrypt"
    assert statements["DecryptArtifacts"]["Action"] == "kms:Decrypt"
    assert statements["PullImage"]["Action"] == [
        "ecr:BatchCheckLayerAvailability",
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
    ]
    assert (
        statements["PullImage"]["Resource"]
        == "arn:aws:ecr:us-east-1:763104351884:repository/huggingface-pytorch-inference"
    )
    assert statements["EcrLogin"] == {
        "Action": "ecr:GetAuthorizationToken",
        "Effect": "Allow",
        "Resource": "*",
        "Sid": "EcrLogin",
    }
    assert statements["PutSageMakerMetrics"]["Condition"] == {
        "StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}
    }
    assert statements["WriteEndpointLogs"]["Action"] == [
        "logs:CreateLogStream",
        "logs:DescribeLogStreams",
        "logs:PutLogEvents",
    ]
    assert list(statements["WriteEndpointLogs"]["Resource"]) == ["Fn::GetAtt"]
    every = [s for s in statements.values() if isinstance(s, dict)] + statements["model-data"]
    wildcard = [s.get("Sid") for s in every if s["Resource"] == "*"]
    assert sorted(wildcard) == ["EcrLogin", "PutSageMakerMetrics"]


def test_vision_model_runs_gpu_dlc_with_inference_code(default_templates: dict[str, Any]) -> None:
    model = _only(default_templates[VISION], "AWS::SageMaker::Model")["Properties"]
    assert "ModelName" not in model  # CloudFormation generates it
    container = model["PrimaryContainer"]
    assert container["Image"] == (
        "763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch-inference:"
        "2.6.0-transformers4.51.3-gpu-py312-cu124-ubuntu22.04"
    )
    # The repack custom resource's output: the user's artifact with model_code/vision as code/.
    assert container["ModelDataUrl"] == {"Fn::GetAtt": ["ModelDataBA9514DB", "ModelDataUrl"]}
    repack = default_templates[VISION]["Resources"]["ModelDataBA9514DB"]["Properties"]
    assert (repack["SourceBucket"], repack["SourceKey"]) == (
        "example-ml-artifacts",
        "dual-encoder/v1/model.tar.gz",
    )
    assert container["Environment"] == {
        "MODEL_VERSION": "1",
        "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
        "SAGEMAKER_PROGRAM": "inference.py",
        "TOWER": "vision",
    }


def test_task_model_uses_hf_task_and_cpu_image(default_templates: dict[str, Any]) -> None:
    container = _only(default_templates[QA], "AWS::SageMaker::Model")["Properties"][
        "PrimaryContainer"
    ]
    assert container["Environment"]["HF_TASK"] == "question-answering"
    assert "SAGEMAKER_PROGRAM" not in container["Environment"]
    assert "-cpu-py312-" in container["Image"]


def test_endpoint_config_variant_and_volume_key(default_templates: dict[str, Any]) -> None:
    vision = _only(default_templates[VISION], "AWS::SageMaker::EndpointConfig")["Properties"]
    assert "EndpointConfigName" not in vision
    assert vision["ProductionVariants"] == [
        {
            "InitialInstanceCount": 1,
            "InitialVariantWeight": 1,
            "InstanceType": "ml.g5.xlarge",
            "ModelName": {
                "Fn::GetAtt": [
                    next(
                        k
                        for k, r in default_templates[VISION]["Resources"].items()
                        if r["Type"] == "AWS::SageMaker::Model"
                    ),
                    "ModelName",
                ]
            },
            "VariantName": "AllTraffic",
        }
    ]
    # ml.g5 has NVMe instance storage: SageMaker rejects a KmsKeyId there.
    assert "KmsKeyId" not in vision
    text = _only(default_templates[TEXT], "AWS::SageMaker::EndpointConfig")["Properties"]
    assert list(text["KmsKeyId"]) == ["Fn::ImportValue"]


def test_endpoint_has_configured_name_and_stable_logical_id(
    default_templates: dict[str, Any],
) -> None:
    endpoints = {
        k: r
        for k, r in default_templates[VISION]["Resources"].items()
        if r["Type"] == "AWS::SageMaker::Endpoint"
    }
    assert list(endpoints) == [
        "EndpointEEF1FD8F"
    ]  # pinned: a new logical id would replace the endpoint
    assert endpoints["EndpointEEF1FD8F"]["Properties"]["EndpointName"] == "hf-towers-dev-vision"


def test_log_group_is_the_endpoints_own_encrypted_with_retention(
    default_templates: dict[str, Any],
) -> None:
    group = _only(default_templates[VISION], "AWS::Logs::LogGroup", "EndpointLogs")["Properties"]
    assert group["LogGroupName"] == "/aws/sagemaker/Endpoints/hf-towers-dev-vision"
    assert group["RetentionInDays"] == 30
    assert list(group["KmsKeyId"]) == ["Fn::ImportValue"]


def test_outputs(default_templates: dict[str, Any]) -> None:
    assert set(default_templates[VISION]["Outputs"]) >= {
        "ModelName",
        "ExecutionRoleArn",
        "EndpointName",
        "EndpointArn",
    }


@pytest.fixture(scope="module")
def model_only() -> dict[str, Any]:
    data = default_data()
    data["towers"] = {"vision": {**data["towers"]["vision"], "deploy_endpoint": False}}
    _, deployed = build(data)
    return dict(Template.from_stack(deployed.towers["vision"]).to_json())


def test_model_only_mode_creates_model_and_nothing_after_it(model_only: dict[str, Any]) -> None:
    # The Model and what builds its artifact (role, repack custom resource); no endpoint side.
    types = {r["Type"] for r in model_only["Resources"].values()}
    assert "AWS::SageMaker::Model" in types
    assert not {
        t
        for t in types
        if t.startswith(
            ("AWS::SageMaker::Endpoint", "AWS::ApplicationAutoScaling", "AWS::CloudWatch")
        )
    }
    assert not [k for k in model_only["Resources"] if k.startswith(("EndpointLogs", "Endpoint"))]
    assert {k for k in model_only["Outputs"] if not k.startswith("Exports")} == {
        "ModelName",
        "ExecutionRoleArn",
    }
    assert "WriteEndpointLogs" not in _statements(model_only)


def test_explicit_image_uri_is_used_and_pulled_from_its_repository() -> None:
    data = default_data()
    uri = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/clip-serving:1.4.2"
    data["towers"] = {"vision": {**data["towers"]["vision"], "image": uri}}
    _, deployed = build(data)
    template = dict(Template.from_stack(deployed.towers["vision"]).to_json())
    assert (
        _only(template, "AWS::SageMaker::Model")["Properties"]["PrimaryContainer"]["Image"] == uri
    )
    assert (
        _statements(template)["PullImage"]["Resource"]
        == "arn:aws:ecr:eu-west-1:123456789012:repository/team/clip-serving"
    )


def test_grant_invoke_allows_only_invoking_this_endpoint() -> None:
    from aws_cdk import aws_iam as iam

    _, deployed = build(default_data())
    stack = deployed.towers["vision"]
    consumer = iam.Role(stack, "Consumer", assumed_by=iam.AccountRootPrincipal())
    stack.tower.grant_invoke(consumer)
    policies = Template.from_stack(stack).find_resources("AWS::IAM::Policy")
    (policy,) = [p for k, p in policies.items() if k.startswith("ConsumerDefaultPolicy")]
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Action"] == [
        "sagemaker:InvokeEndpoint",
        "sagemaker:InvokeEndpointAsync",
        "sagemaker:InvokeEndpointWithResponseStream",
    ]
    assert statement["Resource"] == {"Ref": "EndpointEEF1FD8F"}


def test_uncompressed_model_data_uses_an_s3_prefix_model_data_source(tmp_path: Any) -> None:
    data = default_data()
    data["towers"] = {
        "vision": {
            **data["towers"]["vision"],
            "compressed_model_data": False,
            "max_decompression_ratio": 20,
        }
    }
    _, deployed = build(data)
    template = dict(Template.from_stack(deployed.towers["vision"]).to_json())
    container = _only(template, "AWS::SageMaker::Model")["Properties"]["PrimaryContainer"]
    assert "ModelDataUrl" not in container
    assert container["ModelDataSource"] == {
        "S3DataSource": {
            "S3Uri": {"Fn::GetAtt": ["ModelDataBA9514DB", "S3Uri"]},
            "S3DataType": "S3Prefix",
            "CompressionType": "None",
        }
    }
    repack = template["Resources"]["ModelDataBA9514DB"]["Properties"]
    assert (repack["Compressed"], repack["MaxRatio"]) == ("false", "20.0")


def test_s3_arns_carry_the_stacks_partition_in_china() -> None:
    """ARNs of an artifact given by URI were written with a literal ``aws``: in ``aws-cn`` the
    execution role could not read its own model."""
    data = default_data()
    data["region"] = "cn-north-1"
    data["towers"] = {"qa": data["towers"]["qa"]}
    _, deployed = build(data)
    template = dict(Template.from_stack(deployed.towers["qa"]).to_json())
    resources = [s["Resource"] for s in _statements(template)["model-data"]]
    assert resources == [
        "arn:aws-cn:s3:::example-ml-artifacts/distilbert-base-uncased-distilled-squad/model.tar.gz"
    ]


def test_image_build_uses_the_serving_image_asset_and_passes_every_pack(tmp_path: Any) -> None:
    """Seed 002's serving image: ``image: build`` was documented but refused by config, and no
    stack used the construct. Synth declares the Docker asset (cdk deploy builds it; no Docker
    here), the Model runs it and the execution role pulls from exactly its repository."""
    import json

    from hf_towers.tools.synth_check import check
    from tests.synth_helpers import assert_packs_pass

    data = default_data()
    data["towers"] = {"text": {**data["towers"]["text"], "image": "build"}}
    app, deployed = build(data, nag=True, outdir=tmp_path)
    assembly = app.synth()
    assert_packs_pass(json.loads((tmp_path / "validation-report.json").read_text()))
    assert [r.name for r in check(tmp_path) if not r.ok] == []
    stack = deployed.towers["text"]
    template = dict(Template.from_stack(stack).to_json())
    image = _only(template, "AWS::SageMaker::Model")["Properties"]["PrimaryContainer"]["Image"]
    assert "container-assets" in json.dumps(image)
    statements = _statements(template)
    assert "container-assets" in json.dumps(statements["PullImage"]["Resource"])
    assets = json.loads((tmp_path / f"{stack.artifact_id}.assets.json").read_text())
    (docker,) = assets["dockerImages"].values()
    assert docker["source"]["dockerFile"].endswith("serving_image/Dockerfile")
    assert assembly.get_stack_artifact(stack.artifact_id).template


def test_image_build_is_refused_where_the_cpu_image_cannot_serve() -> None:
    from hf_towers.config import ConfigError, parse_config

    data = default_data()
    data["towers"]["vision"]["image"] = "build"  # ml.g5.xlarge
    with pytest.raises(ConfigError, match="image: build is CPU-only"):
        parse_config(data, "config/bad.yaml")
    data = default_data()
    data["towers"]["qa"]["image"] = "build"
    with pytest.raises(ConfigError, match="a kind 'task' model runs the toolkit's pipeline"):
        parse_config(data, "config/bad.yaml")
