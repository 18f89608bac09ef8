"""Template comparison: added/removed/modified/replaced, create-only paths, tokens, cascades."""

from __future__ import annotations

from typing import Any

from hf_towers.risk.template_diff import (
    ENDPOINT_ROLLOUT,
    PHYSICAL_ID_FROM,
    ChangeKind,
    changed_paths,
    diff_assemblies,
    diff_templates,
    is_missing,
    references,
    value_at,
)


def res(rtype: str, **props: Any) -> dict[str, Any]:
    return {"Type": rtype, "Properties": props}


def tpl(**resources: dict[str, Any]) -> dict[str, Any]:
    return {"Resources": resources}


def by_id(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    return {c.logical_id: c for c in diff_templates("S", old, new).changes}


ROLE_ARN = {"Fn::GetAtt": ["Role", "Arn"]}


def test_added_removed_and_unchanged() -> None:
    queue = res("AWS::SQS::Queue")
    old = tpl(Keep=queue, Gone=res("AWS::SNS::Topic"))
    new = tpl(Keep=queue, Fresh=res("AWS::S3::Bucket"))
    changes = by_id(old, new)
    assert set(changes) == {"Gone", "Fresh"}
    assert changes["Gone"].kind is ChangeKind.REMOVED
    assert changes["Fresh"].kind is ChangeKind.ADDED
    assert changes["Fresh"].resource_type == "AWS::S3::Bucket"


def test_updatable_property_is_modified() -> None:
    old = tpl(B=res("AWS::S3::Bucket", VersioningConfiguration={"Status": "Suspended"}))
    new = tpl(B=res("AWS::S3::Bucket", VersioningConfiguration={"Status": "Enabled"}))
    change = by_id(old, new)["B"]
    assert change.kind is ChangeKind.MODIFIED
    assert change.changed_paths == ("Properties/VersioningConfiguration/Status",)
    assert change.create_only_changed == ()


def test_create_only_property_is_replaced() -> None:
    old = tpl(B=res("AWS::S3::Bucket", BucketName="a"))
    new = tpl(B=res("AWS::S3::Bucket", BucketName="b"))
    change = by_id(old, new)["B"]
    assert change.kind is ChangeKind.REPLACED
    assert change.create_only_changed == ("BucketName",)
    assert "create-only property BucketName changed" in change.replacement_reasons


def test_adding_a_create_only_property_replaces() -> None:
    old = tpl(B=res("AWS::S3::Bucket"))
    new = tpl(B=res("AWS::S3::Bucket", BucketName="named"))
    assert by_id(old, new)["B"].kind is ChangeKind.REPLACED


def test_change_deep_inside_create_only_object_replaces() -> None:
    def model(subnets: list[str]) -> dict[str, Any]:
        return res(
            "AWS::SageMaker::Model",
            ExecutionRoleArn="arn:role",
            VpcConfig={"Subnets": subnets, "SecurityGroupIds": ["sg-1"]},
        )

    change = by_id(tpl(M=model(["s-1"])), tpl(M=model(["s-2"])))["M"]
    assert change.kind is ChangeKind.REPLACED
    assert change.create_only_changed == ("VpcConfig",)
    assert change.changed_paths == ("Properties/VpcConfig/Subnets/0",)


def test_endpoint_config_name_change_only_modifies_endpoint() -> None:
    old = tpl(
        E=res(
            "AWS::SageMaker::Endpoint",
            EndpointConfigName={"Fn::GetAtt": ["C1", "EndpointConfigName"]},
        )
    )
    new = tpl(
        E=res(
            "AWS::SageMaker::Endpoint",
            EndpointConfigName={"Fn::GetAtt": ["C2", "EndpointConfigName"]},
        )
    )
    assert by_id(old, new)["E"].kind is ChangeKind.MODIFIED


def test_tokens_compare_as_json() -> None:
    same = tpl(M=res("AWS::SageMaker::Model", ExecutionRoleArn=dict(ROLE_ARN)))
    assert (
        diff_templates(
            "S", same, tpl(M=res("AWS::SageMaker::Model", ExecutionRoleArn=dict(ROLE_ARN)))
        ).status
        == "unchanged"
    )
    other = tpl(M=res("AWS::SageMaker::Model", ExecutionRoleArn={"Fn::GetAtt": ["Role2", "Arn"]}))
    change = by_id(same, other)["M"]
    assert change.kind is ChangeKind.REPLACED
    assert change.changed_paths == ("Properties/ExecutionRoleArn",)


def test_metadata_and_depends_on_are_ignored() -> None:
    old = tpl(B={**res("AWS::S3::Bucket"), "Metadata": {"aws:cdk:path": "a"}, "DependsOn": ["X"]})
    new = tpl(B={**res("AWS::S3::Bucket"), "Metadata": {"aws:cdk:path": "b"}})
    assert diff_templates("S", old, new).changes == ()


def test_cdk_metadata_resource_is_ignored() -> None:
    old = tpl(CDKMetadata=res("AWS::CDK::Metadata", Analytics="v2:a"))
    new = tpl(CDKMetadata=res("AWS::CDK::Metadata", Analytics="v2:b"))
    assert diff_templates("S", old, new).status == "unchanged"


def test_deletion_policy_change_is_a_modification() -> None:
    old = tpl(B={**res("AWS::S3::Bucket"), "DeletionPolicy": "Retain"})
    new = tpl(B={**res("AWS::S3::Bucket"), "DeletionPolicy": "Delete"})
    change = by_id(old, new)["B"]
    assert change.kind is ChangeKind.MODIFIED
    assert change.changed_paths == ("DeletionPolicy",)


def test_type_change_is_a_replacement() -> None:
    change = by_id(tpl(X=res("AWS::SNS::Topic")), tpl(X=res("AWS::SQS::Queue")))["X"]
    assert change.kind is ChangeKind.REPLACED
    assert "resource type changed" in change.replacement_reasons[0]


def test_replacement_cascades_through_create_only_references() -> None:
    def stack(role_name: str) -> dict[str, Any]:
        return tpl(
            Role=res("AWS::IAM::Role", RoleName=role_name, AssumeRolePolicyDocument={}),
            Model=res("AWS::SageMaker::Model", ExecutionRoleArn=ROLE_ARN),
            Config=res(
                "AWS::SageMaker::EndpointConfig",
                ProductionVariants=[{"ModelName": {"Fn::GetAtt": ["Model", "ModelName"]}}],
            ),
            Endpoint=res(
                "AWS::SageMaker::Endpoint",
                EndpointConfigName={"Fn::GetAtt": ["Config", "EndpointConfigName"]},
            ),
            Alarm=res("AWS::CloudWatch::Alarm", AlarmDescription={"Fn::Sub": "role ${Role.Arn}"}),
        )

    changes = by_id(stack("r1"), stack("r2"))
    assert changes["Role"].kind is ChangeKind.REPLACED
    assert changes["Model"].kind is ChangeKind.REPLACED
    assert "ExecutionRoleArn refers to replaced Role" in changes["Model"].replacement_reasons[0]
    assert changes["Config"].kind is ChangeKind.REPLACED  # cascade of the cascade
    assert changes["Config"].changed_paths == ("Properties/ProductionVariants",)
    assert changes["Config"].create_only_changed == ("ProductionVariants",)
    assert changes["Endpoint"].kind is ChangeKind.MODIFIED  # EndpointConfigName is updatable
    assert changes["Endpoint"].changed_paths == ("Properties/EndpointConfigName",)
    assert changes["Endpoint"].notes == ("updated: refers to replaced Config", ENDPOINT_ROLLOUT)
    assert changes["Alarm"].kind is ChangeKind.MODIFIED  # refers through Fn::Sub


def test_no_schema_never_predicts_replacement() -> None:
    old = tpl(C=res("Custom::Repack", ServiceToken="arn:fn", Source="a"))
    new = tpl(C=res("Custom::Repack", ServiceToken="arn:fn", Source="b"))
    change = by_id(old, new)["C"]
    assert change.kind is ChangeKind.MODIFIED
    assert change.schema_known is False


def test_stack_added_and_removed() -> None:
    diffs = diff_assemblies(
        {"Old": tpl(A=res("AWS::SQS::Queue"))}, {"New": tpl(B=res("AWS::SQS::Queue"))}
    )
    assert [(d.stack, d.status) for d in diffs] == [("New", "added"), ("Old", "removed")]
    assert diffs[0].count(ChangeKind.ADDED) == 1
    assert diffs[1].count(ChangeKind.REMOVED) == 1


def test_changed_paths_granularity() -> None:
    assert changed_paths({"a": {"b": 1, "c": 2}}, {"a": {"b": 1, "c": 3}}) == ["a/c"]
    assert changed_paths({"l": [1, 2]}, {"l": [1, 3]}) == ["l/1"]
    assert changed_paths({"l": [1]}, {"l": [1, 2]}) == ["l"]
    assert changed_paths({"r": {"Ref": "A"}}, {"r": {"Ref": "B"}}) == ["r"]
    assert changed_paths({"x": 1}, {}) == ["x"]


def test_value_at_paths() -> None:
    props = {"A": {"B": 1}, "L": [{"N": "x"}, {"M": 2}], "T": {"Fn::If": ["C", {"B": 1}, {"B": 2}]}}
    assert value_at(props, ("A", "B")) == 1
    assert is_missing(value_at(props, ("A", "Z")))
    items = value_at(props, ("L", "*", "N"))
    assert items[0] == "x" and is_missing(items[1])
    assert value_at(props, ("T", "B")) == props["T"]  # a token stands for the whole object


def test_references() -> None:
    value = {
        "a": {"Ref": "A"},
        "b": {"Fn::GetAtt": ["B", "Arn"]},
        "c": {"Fn::GetAtt": "C.Arn"},
        "d": {"Fn::Sub": "${D.Arn}/${AWS::Region}/${!Literal}"},
        "e": {"Fn::Sub": ["${x}-${E}", {"x": {"Ref": "X"}}]},
    }
    assert set(references(value)) == {"A", "B", "C", "D", "E", "X"}


def test_conditionally_create_only_change_may_replace() -> None:
    old = tpl(I=res("AWS::EC2::Instance", ImageId="ami-1", InstanceType="t3.small"))
    new = tpl(I=res("AWS::EC2::Instance", ImageId="ami-1", InstanceType="t3.large"))
    change = by_id(old, new)["I"]
    assert change.kind is ChangeKind.MODIFIED
    assert change.may_replace == ("InstanceType",)


# --- custom resources that declare what their physical id derives from ---------------------

REPACK_DECLARED = ["CodeKey", "SourceKey"]


def repack(code_key: str, kms: str = "arn:key/1", declared: Any = REPACK_DECLARED) -> Any:
    resource = res(
        "Custom::RepackedModelData",
        ServiceToken="arn:fn",
        CodeKey=code_key,
        SourceKey="m.tar.gz",
        KmsKeyArn=kms,
    )
    if declared is not None:
        resource["Metadata"] = {PHYSICAL_ID_FROM: declared}
    return resource


def serving(repack_resource: Any, model_data: str = "url") -> dict[str, Any]:
    """A repack custom resource, the Model that reads its artifact, its config and endpoint."""
    container: dict[str, Any]
    if model_data == "url":
        container = {"ModelDataUrl": {"Fn::GetAtt": ["Repack", "ModelDataUrl"]}}
    else:
        container = {
            "ModelDataSource": {"S3DataSource": {"S3Uri": {"Fn::GetAtt": ["Repack", "S3Uri"]}}}
        }
    return tpl(
        Repack=repack_resource,
        Model=res("AWS::SageMaker::Model", ExecutionRoleArn=ROLE_ARN, PrimaryContainer=container),
        Config=res(
            "AWS::SageMaker::EndpointConfig",
            ProductionVariants=[{"ModelName": {"Fn::GetAtt": ["Model", "ModelName"]}}],
        ),
        Endpoint=res(
            "AWS::SageMaker::Endpoint",
            EndpointName="e",
            EndpointConfigName={"Fn::GetAtt": ["Config", "EndpointConfigName"]},
        ),
        Read=res(
            "AWS::IAM::Policy",
            PolicyDocument={"Statement": [{"Resource": {"Fn::GetAtt": ["Repack", "Key"]}}]},
        ),
    )


def test_declared_physical_id_property_change_replaces_and_cascades() -> None:
    changes = by_id(serving(repack("code-a.zip")), serving(repack("code-b.zip")))
    assert changes["Repack"].kind is ChangeKind.REPLACED
    assert changes["Repack"].schema_known is True  # predicted, not "no schema"
    assert changes["Repack"].create_only_changed == ("CodeKey",)
    assert "physical id derives from CodeKey" in changes["Repack"].replacement_reasons[0]
    assert changes["Model"].kind is ChangeKind.REPLACED
    assert changes["Model"].replacement_reasons == (
        "create-only property PrimaryContainer refers to replaced Repack",
    )
    assert changes["Config"].kind is ChangeKind.REPLACED
    assert changes["Endpoint"].kind is ChangeKind.MODIFIED
    assert ENDPOINT_ROLLOUT in changes["Endpoint"].notes
    assert changes["Read"].kind is ChangeKind.MODIFIED  # its GetAtt Key is a new value
    diff = diff_templates("S", serving(repack("code-a.zip")), serving(repack("code-b.zip")))
    assert (diff.count(ChangeKind.REPLACED), diff.count(ChangeKind.MODIFIED)) == (3, 2)


def test_uncompressed_model_data_source_cascades_too() -> None:
    changes = by_id(
        serving(repack("code-a.zip"), "source"), serving(repack("code-b.zip"), "source")
    )
    assert [changes[lid].kind for lid in ("Repack", "Model", "Config")] == [ChangeKind.REPLACED] * 3


def test_undeclared_property_change_updates_in_place() -> None:
    changes = by_id(serving(repack("a.zip")), serving(repack("a.zip", kms="arn:key/2")))
    assert set(changes) == {"Repack"}
    assert changes["Repack"].kind is ChangeKind.MODIFIED
    assert changes["Repack"].schema_known is True


def test_declaration_of_either_side_counts_and_metadata_alone_is_no_change() -> None:
    # The first report after the declaration was added: only the new template has it.
    changes = by_id(serving(repack("a.zip", declared=None)), serving(repack("b.zip")))
    assert changes["Repack"].kind is ChangeKind.REPLACED
    # Adding the declaration changes nothing on AWS (Metadata only).
    assert (
        diff_templates(
            "S", serving(repack("a.zip", declared=None)), serving(repack("a.zip"))
        ).changes
        == ()
    )


def test_malformed_or_missing_declaration_is_not_predicted() -> None:
    for declared in (None, "CodeKey", [1, 2]):
        change = by_id(
            serving(repack("a.zip", declared=declared)),
            serving(repack("b.zip", declared=declared)),
        )["Repack"]
        assert change.kind is ChangeKind.MODIFIED
        assert change.schema_known is False


def test_declared_property_referring_to_a_replaced_resource_replaces() -> None:
    def stack(bucket_name: str) -> dict[str, Any]:
        resource = repack("a.zip", declared=["OutputBucket"])
        resource["Properties"]["OutputBucket"] = {"Ref": "Bucket"}
        return tpl(Bucket=res("AWS::S3::Bucket", BucketName=bucket_name), Repack=resource)

    change = by_id(stack("one"), stack("two"))["Repack"]
    assert change.kind is ChangeKind.REPLACED
    assert "OutputBucket refers to replaced Bucket" in change.replacement_reasons[0]


def test_stack_diff_carries_the_compared_resources() -> None:
    old, new = serving(repack("a.zip")), serving(repack("b.zip"))
    diff = diff_templates("S", old, new)
    assert set(diff.old_resources) == set(old["Resources"])
    assert diff.new_resources["Repack"]["Properties"]["CodeKey"] == "b.zip"
    assert diff.change("Model") is not None and diff.change("Nope") is None
