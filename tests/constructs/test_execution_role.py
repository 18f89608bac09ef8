"""``ExecutionRole`` on a bare stack: trusted by SageMaker of this account, least privilege."""

from __future__ import annotations

from aws_cdk import aws_iam as iam

from hf_towers.constructs.execution_role import ExecutionRole
from tests.constructs.bare import IMAGE, bare_stack, key, only, statements


def test_trust_image_pull_and_model_data_statements() -> None:
    stack = bare_stack()
    model_data = iam.PolicyStatement(
        actions=["s3:GetObject"], resources=["arn:aws:s3:::team-models/clip/model.tar.gz"]
    )
    ExecutionRole(
        stack,
        "Role",
        key=key(stack),
        image=IMAGE,
        model_data_statements=[model_data],
        log_group=None,
    )
    trust = only(stack, "AWS::IAM::Role")["Properties"]["AssumeRolePolicyDocument"]
    (assume,) = trust["Statement"]
    assert assume["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    assert assume["Condition"] == {"StringEquals": {"aws:SourceAccount": "111122223333"}}
    by_sid = statements(only(stack, "AWS::IAM::ManagedPolicy"))
    assert by_sid["PullImage"]["Resource"] == IMAGE.repository_arn
    assert by_sid[""]["Resource"] == "arn:aws:s3:::team-models/clip/model.tar.gz"
    assert "WriteEndpointLogs" not in by_sid  # no log group given
    # Nothing writes to S3 unless a capture/async prefix is given.
    assert not any("s3:PutObject" in str(s["Action"]) for s in by_sid.values())
