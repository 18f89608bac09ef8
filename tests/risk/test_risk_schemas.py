"""Create-only lookup from the CloudFormation schemas that cfn-lint ships."""

from __future__ import annotations

import pytest

from hf_towers.risk import schemas
from hf_towers.risk.schemas import create_only_paths, is_create_only, type_schema


def test_schemas_ship_with_cfn_lint() -> None:
    root = schemas.schemas_root()
    assert root.is_dir()
    assert (root / "providers").is_dir()


@pytest.mark.parametrize(
    ("type_name", "path"),
    [
        ("AWS::S3::Bucket", "BucketName"),
        ("AWS::SageMaker::Model", "PrimaryContainer"),
        ("AWS::SageMaker::Model", "ExecutionRoleArn"),
        ("AWS::SageMaker::EndpointConfig", "ProductionVariants"),
        ("AWS::SageMaker::EndpointConfig", "KmsKeyId"),
        ("AWS::SageMaker::Endpoint", "EndpointName"),
        ("AWS::IAM::Role", "RoleName"),
        ("AWS::Logs::LogGroup", "LogGroupName"),
    ],
)
def test_create_only(type_name: str, path: str) -> None:
    assert is_create_only(type_name, path)
    assert (path,) in create_only_paths(type_name)


@pytest.mark.parametrize(
    ("type_name", "path"),
    [
        ("AWS::SageMaker::Endpoint", "EndpointConfigName"),
        ("AWS::S3::Bucket", "BucketEncryption"),
        ("AWS::S3::Bucket", "VersioningConfiguration"),
        ("AWS::IAM::Role", "Policies"),
        ("AWS::IAM::Policy", "PolicyDocument"),
        ("AWS::KMS::Key", "KeyPolicy"),
    ],
)
def test_not_create_only(type_name: str, path: str) -> None:
    assert not is_create_only(type_name, path)


def test_change_under_a_create_only_object_counts() -> None:
    # VpcConfig of a Model is create-only as a whole: any change inside it replaces.
    assert is_create_only("AWS::SageMaker::Model", "VpcConfig/Subnets/0")
    assert is_create_only("AWS::SageMaker::Model", ("PrimaryContainer", "Environment", "HF_TASK"))


def test_nested_pointer_is_matched_exactly() -> None:
    batch = "AWS::Batch::ComputeEnvironment"
    assert ("ComputeResources", "SpotIamFleetRole") in create_only_paths(batch)
    assert is_create_only(batch, "ComputeResources/SpotIamFleetRole")
    assert not is_create_only(batch, "ComputeResources/MaxvCpus")
    assert not is_create_only(batch, "ComputeResources")


def test_array_wildcard_matches_indices() -> None:
    replicator = "AWS::MSK::Replicator"
    assert ("ReplicationInfoList", "*", "SourceKafkaClusterArn") in create_only_paths(replicator)
    assert is_create_only(replicator, "ReplicationInfoList/3/SourceKafkaClusterArn")
    assert not is_create_only(
        replicator, "ReplicationInfoList/3/TopicReplication/TopicsToReplicate"
    )


def test_unknown_types_have_no_schema() -> None:
    assert type_schema("Custom::RepackModel") is None
    assert type_schema("AWS::NoSuch::Thing") is None
    assert create_only_paths("Custom::RepackModel") == ()
    assert not is_create_only("Custom::RepackModel", "ServiceToken")


def test_lookup_is_cached() -> None:
    first = type_schema("AWS::S3::Bucket")
    hits = type_schema.cache_info().hits
    assert type_schema("AWS::S3::Bucket") is first
    assert type_schema.cache_info().hits == hits + 1


def test_primary_identifier_is_read() -> None:
    bucket = type_schema("AWS::S3::Bucket")
    assert bucket is not None
    assert bucket.primary_identifier == (("BucketName",),)


def test_pointer_parsing() -> None:
    assert schemas._parse_pointer("/properties/A/B") == ("A", "B")
    assert schemas._parse_pointer("/properties/A~1B") == ("A/B",)
    assert schemas._parse_pointer("/definitions/X") is None
