"""Each risk rule on a compliant and a non-compliant change."""

from __future__ import annotations

from typing import Any

import pytest

from hf_towers.risk import rules
from hf_towers.risk.rules import RULES, Rule, evaluate
from hf_towers.risk.template_diff import ResourceChange, diff_templates


def res(rtype: str, attrs: dict[str, Any] | None = None, **props: Any) -> dict[str, Any]:
    return {"Type": rtype, "Properties": props, **(attrs or {})}


def change(old: dict[str, Any] | None, new: dict[str, Any] | None) -> ResourceChange:
    before = {"Resources": {"R": old}} if old else {"Resources": {}}
    after = {"Resources": {"R": new}} if new else {"Resources": {}}
    changes = diff_templates("Stack", before, after).changes
    assert len(changes) == 1
    return changes[0]


def messages(rule: Rule, old: dict[str, Any] | None, new: dict[str, Any] | None) -> list[str]:
    return [f.message for f in rule(change(old, new))]


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action: Any, resource: Any = "arn:aws:s3:::b/*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


RETAIN = {"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"}


def test_every_rule_is_registered_once() -> None:
    names = [r.name for r in RULES]
    assert len(names) == len(set(names))
    assert {
        "stateful-replaced",
        "stateful-removed",
        "retention-dropped",
        "endpoint-replaced",
        "named-resource-replaced",
        "iam-widened",
        "encryption-removed",
        "kms-key-disabled",
    } <= set(names)


# stateful-replaced


def test_stateful_replacement_is_risky() -> None:
    found = messages(
        rules.stateful_replaced,
        res("AWS::S3::Bucket", RETAIN, BucketName="a"),
        res("AWS::S3::Bucket", RETAIN, BucketName="b"),
    )
    assert len(found) == 1
    assert "starts empty" in found[0] and "retained" in found[0]


def test_retained_stateless_type_counts_as_stateful() -> None:
    old = res("AWS::SageMaker::Model", {"DeletionPolicy": "Retain"}, ExecutionRoleArn="a")
    new = res("AWS::SageMaker::Model", {"DeletionPolicy": "Retain"}, ExecutionRoleArn="b")
    assert messages(rules.stateful_replaced, old, new)


def test_stateless_replacement_is_not_stateful_risk() -> None:
    old = res("AWS::SageMaker::Model", ExecutionRoleArn="a")
    new = res("AWS::SageMaker::Model", ExecutionRoleArn="b")
    assert messages(rules.stateful_replaced, old, new) == []


def test_stateful_modification_is_fine() -> None:
    old = res("AWS::Logs::LogGroup", RetentionInDays=7)
    new = res("AWS::Logs::LogGroup", RetentionInDays=30)
    assert messages(rules.stateful_replaced, old, new) == []


# stateful-removed


def test_removing_a_key_is_risky() -> None:
    found = messages(rules.stateful_removed, res("AWS::KMS::Key"), None)
    assert found and "deleted" in found[0]


def test_removing_a_retained_bucket_says_orphaned() -> None:
    found = messages(rules.stateful_removed, res("AWS::S3::Bucket", RETAIN), None)
    assert found and "orphaned" in found[0]


def test_removing_a_stateless_resource_is_fine() -> None:
    assert messages(rules.stateful_removed, res("AWS::SageMaker::Model"), None) == []


# retention-dropped


def test_dropping_retain_is_risky() -> None:
    found = messages(
        rules.retention_dropped,
        res("AWS::S3::Bucket", RETAIN),
        res("AWS::S3::Bucket", {"UpdateReplacePolicy": "Retain"}),
    )
    assert found == ["DeletionPolicy changes from Retain to Delete (default)"]


def test_adding_retain_is_fine() -> None:
    assert (
        messages(rules.retention_dropped, res("AWS::S3::Bucket"), res("AWS::S3::Bucket", RETAIN))
        == []
    )


# endpoint-replaced


def test_endpoint_replacement_is_risky() -> None:
    found = messages(
        rules.endpoint_replaced,
        res("AWS::SageMaker::Endpoint", EndpointName="e1", EndpointConfigName="c"),
        res("AWS::SageMaker::Endpoint", EndpointName="e2", EndpointConfigName="c"),
    )
    assert found and "EndpointName" in found[0]


def test_endpoint_removal_is_risky() -> None:
    assert messages(
        rules.endpoint_replaced, res("AWS::SageMaker::Endpoint", EndpointConfigName="c"), None
    )


def test_endpoint_config_swap_is_fine() -> None:
    found = messages(
        rules.endpoint_replaced,
        res("AWS::SageMaker::Endpoint", EndpointConfigName="c1"),
        res("AWS::SageMaker::Endpoint", EndpointConfigName="c2"),
    )
    assert found == []


# named-resource-replaced


def test_replacing_custom_named_resource_with_same_name_fails_the_update() -> None:
    found = messages(
        rules.named_resource_replaced,
        res("AWS::SageMaker::Model", ModelName="m", ExecutionRoleArn="a"),
        res("AWS::SageMaker::Model", ModelName="m", ExecutionRoleArn="b"),
    )
    assert len(found) == 1 and "update fails" in found[0]


def test_renaming_is_flagged() -> None:
    found = messages(
        rules.named_resource_replaced,
        res("AWS::S3::Bucket", BucketName="a"),
        res("AWS::S3::Bucket", BucketName="b"),
    )
    assert len(found) == 1 and 'from "a" to "b"' in found[0]


def test_generated_name_replacement_is_safe() -> None:
    found = messages(
        rules.named_resource_replaced,
        res("AWS::SageMaker::Model", ExecutionRoleArn="a"),
        res("AWS::SageMaker::Model", ExecutionRoleArn="b"),
    )
    assert found == []


def test_name_properties_come_from_schema() -> None:
    assert rules.name_properties("AWS::S3::Bucket")[0] == "BucketName"
    assert "RoleName" in rules.name_properties("AWS::IAM::Role")
    assert "EndpointName" in rules.name_properties("AWS::SageMaker::Endpoint")
    assert "EndpointConfigName" not in rules.name_properties("AWS::SageMaker::Endpoint")


# iam-widened


@pytest.mark.parametrize(
    "rtype",
    ["AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::S3::BucketPolicy"],
)
def test_new_wildcard_action_is_risky(rtype: str) -> None:
    found = messages(
        rules.iam_widened,
        res(rtype, PolicyDocument=policy(allow("s3:GetObject"))),
        res(rtype, PolicyDocument=policy(allow(["s3:GetObject", "s3:*"]))),
    )
    assert found == ["adds wildcard actions `s3:*`"]


def test_new_action_is_risky() -> None:
    found = messages(
        rules.iam_widened,
        res("AWS::IAM::Policy", PolicyDocument=policy(allow("s3:GetObject"))),
        res("AWS::IAM::Policy", PolicyDocument=policy(allow(["s3:GetObject", "s3:PutObject"]))),
    )
    assert found == ["grants new actions `s3:putobject`"]


def test_new_star_resource_in_role_inline_policy_is_risky() -> None:
    def role(resource: Any) -> dict[str, Any]:
        return res(
            "AWS::IAM::Role",
            AssumeRolePolicyDocument=policy(
                allow("sts:AssumeRole", None, Principal={"Service": "sagemaker.amazonaws.com"})
            ),
            Policies=[
                {"PolicyName": "p", "PolicyDocument": policy(allow("s3:GetObject", resource))}
            ],
        )

    found = messages(rules.iam_widened, role({"Fn::GetAtt": ["B", "Arn"]}), role("*"))
    assert found == ["adds `Resource: *`"]


def test_new_trust_principal_and_managed_policy_are_risky() -> None:
    def role(principal: str, arns: list[str]) -> dict[str, Any]:
        trust = policy(allow("sts:AssumeRole", None, Principal={"AWS": principal}))
        return res("AWS::IAM::Role", AssumeRolePolicyDocument=trust, ManagedPolicyArns=arns)

    found = messages(
        rules.iam_widened,
        role("arn:aws:iam::111111111111:root", []),
        role("*", ["arn:aws:iam::aws:policy/AdministratorAccess"]),
    )
    assert any("new principals `AWS:*`" in m for m in found)
    assert any("AdministratorAccess" in m for m in found)


def test_removed_deny_in_key_policy_is_risky() -> None:
    deny = {"Effect": "Deny", "Action": "kms:*", "Resource": "*", "Principal": {"AWS": "*"}}
    base = allow("kms:Decrypt", "*", Principal={"AWS": "arn:aws:iam::1:root"})
    found = messages(
        rules.iam_widened,
        res("AWS::KMS::Key", KeyPolicy=policy(base, deny)),
        res("AWS::KMS::Key", KeyPolicy=policy(base)),
    )
    assert found == ["removes 1 Deny statement(s)"]


def test_narrowing_is_fine() -> None:
    found = messages(
        rules.iam_widened,
        res("AWS::IAM::Policy", PolicyDocument=policy(allow(["s3:*"], "*"))),
        res("AWS::IAM::Policy", PolicyDocument=policy(allow("s3:GetObject"))),
    )
    assert found == []


def test_new_scoped_policy_is_fine_but_new_wildcard_policy_is_not() -> None:
    scoped = res("AWS::IAM::Policy", PolicyDocument=policy(allow("s3:GetObject")))
    assert messages(rules.iam_widened, None, scoped) == []
    wild = res("AWS::IAM::Policy", PolicyDocument=policy(allow("*", "*")))
    found = messages(rules.iam_widened, None, wild)
    assert found == ["new policy grants wildcard actions `*`", "new policy grants on `Resource: *`"]


def test_statement_as_single_object_and_token_resources() -> None:
    old = res("AWS::IAM::Policy", PolicyDocument={"Statement": allow("s3:GetObject", {"Ref": "B"})})
    new = res("AWS::IAM::Policy", PolicyDocument={"Statement": allow("s3:GetObject", {"Ref": "C"})})
    assert messages(rules.iam_widened, old, new) == []


# encryption-removed


def test_bucket_encryption_removed_is_risky() -> None:
    encryption = {
        "ServerSideEncryptionConfiguration": [
            {
                "ServerSideEncryptionByDefault": {
                    "SSEAlgorithm": "aws:kms",
                    "KMSMasterKeyID": {"Ref": "K"},
                }
            }
        ]
    }
    found = messages(
        rules.encryption_removed,
        res("AWS::S3::Bucket", BucketEncryption=encryption),
        res("AWS::S3::Bucket"),
    )
    assert any("BucketEncryption is removed" in m for m in found)


def test_kms_downgrade_to_s3_managed_is_risky() -> None:
    def bucket(default: dict[str, Any]) -> dict[str, Any]:
        return res(
            "AWS::S3::Bucket",
            BucketEncryption={
                "ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": default}]
            },
        )

    found = messages(
        rules.encryption_removed,
        bucket({"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "k"}),
        bucket({"SSEAlgorithm": "AES256"}),
    )
    assert len(found) == 1 and "KMSMasterKeyID" in found[0]


def test_endpoint_config_kms_key_removed_is_risky() -> None:
    variants = [{"ModelName": "m", "VariantName": "v"}]
    found = messages(
        rules.encryption_removed,
        res("AWS::SageMaker::EndpointConfig", ProductionVariants=variants, KmsKeyId={"Ref": "Key"}),
        res("AWS::SageMaker::EndpointConfig", ProductionVariants=variants),
    )
    assert len(found) == 1 and "KmsKeyId" in found[0]


def test_encryption_turned_off_by_flag_is_risky() -> None:
    assert messages(
        rules.encryption_removed,
        res("AWS::EFS::FileSystem", Encrypted=True),
        res("AWS::EFS::FileSystem", Encrypted=False),
    )


def test_changing_the_key_is_fine() -> None:
    found = messages(
        rules.encryption_removed,
        res("AWS::Logs::LogGroup", KmsKeyId={"Fn::GetAtt": ["K1", "Arn"]}),
        res("AWS::Logs::LogGroup", KmsKeyId={"Fn::GetAtt": ["K2", "Arn"]}),
    )
    assert found == []


# kms-key-disabled


def test_disabling_a_key_is_risky() -> None:
    found = messages(
        rules.kms_key_disabled,
        res("AWS::KMS::Key", Enabled=True),
        res("AWS::KMS::Key", Enabled=False),
    )
    assert found and "disabled" in found[0]


def test_turning_rotation_off_is_risky() -> None:
    found = messages(
        rules.kms_key_disabled,
        res("AWS::KMS::Key", EnableKeyRotation=True),
        res("AWS::KMS::Key", EnableKeyRotation=False, Description="x"),
    )
    assert found == ["automatic rotation of the KMS key is turned off"]


def test_enabling_a_key_is_fine() -> None:
    found = messages(
        rules.kms_key_disabled,
        res("AWS::KMS::Key", Enabled=False),
        res("AWS::KMS::Key", EnableKeyRotation=True),
    )
    assert found == []


# evaluate


def test_evaluate_collects_findings_with_locations() -> None:
    old = {"Resources": {"B": res("AWS::S3::Bucket", RETAIN, BucketName="a")}}
    new = {"Resources": {"B": res("AWS::S3::Bucket", RETAIN, BucketName="b")}}
    findings = evaluate([diff_templates("Data", old, new)])
    assert {f.rule for f in findings} == {"stateful-replaced", "named-resource-replaced"}
    assert all(f.stack == "Data" and f.logical_id == "B" for f in findings)
    assert evaluate([diff_templates("Data", old, old)]) == []
