"""Each risk rule on a compliant and a non-compliant change."""

from __future__ import annotations

from typing import Any

import pytest

from hf_towers.risk import rules
from hf_towers.risk.rules import (
    AUTOSCALING_UPDATE_PAGE,
    RISKY,
    RULES,
    WILL_FAIL,
    Rule,
    evaluate,
)
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
        "autoscaled-variant-update",
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
    [finding] = rules.named_resource_replaced(
        change(
            res("AWS::SageMaker::Model", ModelName="m", ExecutionRoleArn="a"),
            res("AWS::SageMaker::Model", ModelName="m", ExecutionRoleArn="b"),
        )
    )
    assert finding.severity == WILL_FAIL and finding.message.startswith("will fail: ")
    assert "aws-properties-name.html" in finding.message


def test_renaming_is_flagged() -> None:
    found = messages(
        rules.named_resource_replaced,
        res("AWS::S3::Bucket", BucketName="a"),
        res("AWS::S3::Bucket", BucketName="b"),
    )
    assert len(found) == 1 and 'from "a" to "b"' in found[0]
    [finding] = rules.named_resource_replaced(
        change(res("AWS::S3::Bucket", BucketName="a"), res("AWS::S3::Bucket", BucketName="b"))
    )
    assert finding.severity == RISKY  # a new name deploys; what addresses the old one breaks


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


# autoscaled-variant-update (will fail)


def endpoint_stack(
    instance_type: str | None = "ml.m5.xlarge",
    *,
    scaled: bool = True,
    variants: tuple[str, ...] = ("AllTraffic",),
    resource_id: Any = "endpoint/e1/variant/AllTraffic",
    endpoint_name: Any = "e1",
    model: str = "Model",
) -> dict[str, Any]:
    """Model, EndpointConfig, Endpoint and (``scaled``) a ScalableTarget on the variant."""
    production = [
        {
            "VariantName": name,
            "ModelName": {"Fn::GetAtt": [model, "ModelName"]},
            "InitialInstanceCount": 1,
            **({"InstanceType": instance_type} if instance_type else {}),
        }
        for name in variants
    ]
    resources: dict[str, Any] = {
        model: res("AWS::SageMaker::Model", ExecutionRoleArn="arn:role"),
        "Config": res("AWS::SageMaker::EndpointConfig", ProductionVariants=production),
        "Endpoint": res(
            "AWS::SageMaker::Endpoint",
            EndpointName=endpoint_name,
            EndpointConfigName={"Fn::GetAtt": ["Config", "EndpointConfigName"]},
        ),
    }
    if scaled:
        resources["Target"] = res(
            "AWS::ApplicationAutoScaling::ScalableTarget",
            {"DependsOn": ["Endpoint"]},
            ServiceNamespace="sagemaker",
            ScalableDimension="sagemaker:variant:DesiredInstanceCount",
            ResourceId=resource_id,
            MinCapacity=1,
            MaxCapacity=2,
        )
    return {"Resources": resources}


def will_fail(old: dict[str, Any], new: dict[str, Any]) -> list[rules.Finding]:
    return [
        f
        for f in evaluate([diff_templates("Tower", old, new)])
        if f.rule == "autoscaled-variant-update"
    ]


def test_instance_type_change_of_an_autoscaled_variant_will_fail() -> None:
    [finding] = will_fail(endpoint_stack("ml.m5.xlarge"), endpoint_stack("ml.g5.xlarge"))
    assert finding.severity == WILL_FAIL and finding.will_fail
    assert (finding.stack, finding.logical_id) == ("Tower", "Endpoint")
    assert finding.resource_type == "AWS::SageMaker::Endpoint"
    assert finding.message.startswith("will fail: variant AllTraffic of endpoint e1 changes ")
    assert "InstanceType from ml.m5.xlarge to ml.g5.xlarge" in finding.message
    assert "(Target, endpoint/e1/variant/AllTraffic)" in finding.message
    assert "autoscaling: {enabled: false}" in finding.message  # the way out
    assert "new endpoint name" in finding.message
    assert AUTOSCALING_UPDATE_PAGE in finding.message


def test_instance_type_change_without_autoscaling_is_not_flagged() -> None:
    old, new = endpoint_stack(scaled=False), endpoint_stack("ml.g5.xlarge", scaled=False)
    assert will_fail(old, new) == []
    # ... though the same change is an EndpointConfig replacement and an Endpoint update.
    diff = diff_templates("Tower", old, new)
    assert {c.logical_id: c.kind.value for c in diff.changes} == {
        "Config": "replaced",
        "Endpoint": "modified",
    }


def test_the_way_out_sequence_has_no_failing_step() -> None:
    scaled_old = endpoint_stack("ml.m5.xlarge")
    unscaled_old = endpoint_stack("ml.m5.xlarge", scaled=False)
    unscaled_new = endpoint_stack("ml.g5.xlarge", scaled=False)
    scaled_new = endpoint_stack("ml.g5.xlarge")
    assert will_fail(scaled_old, unscaled_old) == []  # 1. disable autoscaling
    assert will_fail(unscaled_old, unscaled_new) == []  # 2. change the type
    assert will_fail(unscaled_new, scaled_new) == []  # 3. re-enable
    # Disabling autoscaling in the same deploy does not help: the target is deregistered only
    # in the cleanup phase, after the endpoint update.
    assert len(will_fail(scaled_old, unscaled_new)) == 1


def test_other_changes_of_an_autoscaled_endpoint_are_allowed() -> None:
    # A new model for the variant is the documented exception; the same type is no change.
    assert will_fail(endpoint_stack(), endpoint_stack(model="Model2")) == []
    assert will_fail(endpoint_stack(), endpoint_stack()) == []


def test_a_new_endpoint_name_is_a_new_endpoint_not_an_update() -> None:
    new = endpoint_stack(
        "ml.g5.xlarge", endpoint_name="e2", resource_id="endpoint/e2/variant/AllTraffic"
    )
    assert will_fail(endpoint_stack(), new) == []


def test_removing_an_autoscaled_variant_will_fail() -> None:
    old = endpoint_stack(variants=("AllTraffic", "Canary"))
    old["Resources"]["Target"]["Properties"]["ResourceId"] = "endpoint/e1/variant/Canary"
    [finding] = will_fail(old, endpoint_stack(variants=("AllTraffic",)))
    assert "variant Canary of endpoint e1 is removed" in finding.message
    # The variant that stays keeps its type: the other variant's target is no problem.
    assert will_fail(endpoint_stack(variants=("AllTraffic", "Canary")), endpoint_stack()) == []


def test_target_on_another_variant_or_namespace_is_not_matched() -> None:
    other = endpoint_stack(resource_id="endpoint/e1/variant/Other")
    assert will_fail(other, endpoint_stack("ml.g5.xlarge")) == []
    ecs = endpoint_stack()
    ecs["Resources"]["Target"]["Properties"]["ServiceNamespace"] = "ecs"
    assert will_fail(ecs, endpoint_stack("ml.g5.xlarge")) == []


def test_resource_id_tokens_naming_the_endpoint_are_resolved() -> None:
    name = {"Fn::GetAtt": ["Endpoint", "EndpointName"]}
    joined = {"Fn::Join": ["", ["endpoint/", name, "/variant/AllTraffic"]]}
    generated = endpoint_stack(endpoint_name=None, resource_id=joined)
    del generated["Resources"]["Endpoint"]["Properties"]["EndpointName"]
    new = endpoint_stack("ml.g5.xlarge", endpoint_name=None, resource_id=joined)
    del new["Resources"]["Endpoint"]["Properties"]["EndpointName"]
    assert len(will_fail(generated, new)) == 1
    sub = {"Fn::Sub": "endpoint/${Endpoint.EndpointName}/variant/AllTraffic"}
    assert len(will_fail(endpoint_stack(resource_id=sub), endpoint_stack("ml.g5.xlarge"))) == 1
    unknown = {"Fn::Join": ["", ["endpoint/", {"Ref": "Other"}, "/variant/AllTraffic"]]}
    assert will_fail(endpoint_stack(resource_id=unknown), endpoint_stack("ml.g5.xlarge")) == []


def test_will_fail_findings_come_first_and_others_are_risky() -> None:
    old, new = endpoint_stack(), endpoint_stack("ml.g5.xlarge")
    new["Resources"]["Endpoint"]["Properties"]["EndpointName"] = "e1"
    bucket_old = {"Resources": {"B": res("AWS::S3::Bucket", RETAIN, BucketName="a")}}
    bucket_new = {"Resources": {"B": res("AWS::S3::Bucket", RETAIN, BucketName="b")}}
    findings = evaluate(
        [diff_templates("A", bucket_old, bucket_new), diff_templates("B", old, new)]
    )
    assert [f.severity for f in findings] == [WILL_FAIL, RISKY, RISKY]
    assert findings[0].stack == "B"
