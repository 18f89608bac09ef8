"""CDK-level tests of ``RepackedModelData``: the synthesized template."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Match, Template

from hf_towers.constructs.model_data import ModelData
from hf_towers.constructs.repack import RepackedModelData, vendor
from hf_towers.constructs.repack.runtime.handler import props
from hf_towers.constructs.repack.vendor import RUNTIME


def code_dir(tmp_path: Path, entry: str = "inference.py") -> str:
    d = tmp_path / "code"
    d.mkdir(exist_ok=True)
    (d / entry).write_text("def model_fn(model_dir):\n    return None\n")
    return str(d)


def synth(tmp_path: Path, **kwargs: Any) -> tuple[Template, RepackedModelData, cdk.Stack]:
    app = cdk.App(outdir=str(tmp_path / "cdk.out"))
    stack = cdk.Stack(
        app, "Towers", env=cdk.Environment(account="123456789012", region="us-east-1")
    )
    key = kms.Key(stack, "Key")
    bucket = s3.Bucket(stack, "Artifacts", encryption=s3.BucketEncryption.KMS, encryption_key=key)
    args: dict[str, Any] = {"tower": "text", "source_uri": "s3://user-models/clip/model.tar.gz"}
    args.update(kwargs)
    data = RepackedModelData(
        stack, "TextModelData", code_dir=code_dir(tmp_path), bucket=bucket, key=key, **args
    )
    role = iam.Role(stack, "ExecRole", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
    data.grant_read(role)
    return Template.from_stack(stack), data, stack


def partition_arn(rest: str) -> dict[str, Any]:
    return {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, f":s3:::{rest}"]]}


def statements_of(template: Template, role_prefix: str) -> list[dict[str, Any]]:
    roles = template.find_resources("AWS::IAM::Role")
    role_id = next(r for r in roles if r.startswith(role_prefix))
    policies = {
        **template.find_resources("AWS::IAM::ManagedPolicy"),
        **template.find_resources("AWS::IAM::Policy"),
    }
    statements: list[dict[str, Any]] = []
    for policy in policies.values():
        if {"Ref": role_id} in policy["Properties"].get("Roles", []):
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def test_functions_run_python_314_from_the_handler_package(tmp_path: Path) -> None:
    template, _, _ = synth(tmp_path)
    handlers = {
        f["Properties"]["Handler"]: f["Properties"]
        for f in template.find_resources(
            "AWS::Lambda::Function", {"Properties": {"Runtime": "python3.14"}}
        ).values()
    }
    assert set(handlers) == {"handler.index.on_event", "handler.index.is_complete"}
    assert handlers["handler.index.is_complete"]["Timeout"] == 900
    assert {f["Runtime"] for f in handlers.values()} == {
        f"python{vendor.PYTHON_TAG[2]}.{vendor.PYTHON_TAG[3:]}"  # the wheel fits the runtime
    }
    assets = list((tmp_path / "cdk.out").glob("asset.*/handler/index.py"))
    assert len(assets) == 1, "one asset, handler/ at its root"
    root = assets[0].parent.parent
    shipped = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    # Exactly the runtime folder (the handler package, never the construct) and the pinned
    # zlib-ng wheel's files at the root, where Lambda's sys.path finds them.
    (pin,) = vendor.read_pins(vendor.REQUIREMENTS)
    wheel = vendor.find_wheel(pin, vendor.WHEELS, python_tag="cp314", machine="x86_64")
    with zipfile.ZipFile(wheel) as archive:
        members = {name for name in archive.namelist() if not name.endswith("/")}
    assert shipped == members | {
        p.relative_to(RUNTIME).as_posix()
        for p in RUNTIME.rglob("*.py")
        if "__pycache__" not in p.parts
    }
    assert {"handler/props.py", "zlib_ng/zlib_ng.cpython-314-x86_64-linux-gnu.so"} <= shipped
    assert "construct.py" not in shipped and "requirements-function.txt" not in shipped
    assert "vendor.py" not in shipped
    # Both functions run that one asset.
    keys = {f["Code"]["S3Key"] for f in handlers.values()}
    assert keys == {f"{root.name.removeprefix('asset.')}.zip"}


def test_custom_resource_properties(tmp_path: Path) -> None:
    template, _, _ = synth(tmp_path, max_ratio=50.0, removal_policy=cdk.RemovalPolicy.DESTROY)
    template.has_resource_properties(
        "Custom::RepackedModelData",
        {
            props.SOURCE_BUCKET: "user-models",
            props.SOURCE_KEY: "clip/model.tar.gz",
            props.CODE_BUCKET: Match.any_value(),
            props.CODE_KEY: Match.string_like_regexp(r"^[0-9a-f]{64}\.zip$"),
            props.OUTPUT_BUCKET: {"Ref": Match.string_like_regexp("^Artifacts")},
            props.OUTPUT_PREFIX: "text",
            props.KMS_KEY_ARN: {"Fn::GetAtt": [Match.string_like_regexp("^Key"), "Arn"]},
            props.ENTRY_MODULE: "inference.py",
            props.COMPRESSED: "true",
            props.MAX_RATIO: "50.0",
            props.PART_SIZE: str(props.DEFAULT_PART_SIZE),
            props.RETAIN_ON_DELETE: "false",
        },
    )


def test_worker_policy_is_least_privilege(tmp_path: Path) -> None:
    template, _, _ = synth(tmp_path)
    statements = statements_of(template, "TextModelDataRole")
    bucket_arn = {"Fn::GetAtt": [Match.string_like_regexp("^Artifacts"), "Arn"]}
    expected = [
        {
            "Action": "s3:GetObject",
            "Effect": "Allow",
            "Resource": partition_arn("user-models/clip/model.tar.gz"),
        },
        {"Action": "s3:GetObject", "Effect": "Allow", "Resource": Match.any_value()},
        {
            "Action": [
                "s3:AbortMultipartUpload",
                "s3:DeleteObject",
                "s3:GetObject",
                "s3:ListMultipartUploadParts",
                "s3:PutObject",
            ],
            "Effect": "Allow",
            "Resource": {"Fn::Join": ["", [bucket_arn, "/text/*"]]},
        },
        {
            "Action": "s3:ListBucket",
            "Effect": "Allow",
            "Resource": bucket_arn,
            "Condition": {"StringLike": {"s3:prefix": ["text/*"]}},
        },
        # No s3:prefix condition: ListBucketMultipartUploads has no such key, and an Allow
        # conditioned on one never applies in AWS (Delete would fail AccessDenied).
        {"Action": "s3:ListBucketMultipartUploads", "Effect": "Allow", "Resource": bucket_arn},
        {
            "Action": ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"],
            "Effect": "Allow",
            "Resource": {"Fn::GetAtt": [Match.string_like_regexp("^Key"), "Arn"]},
        },
        {
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Effect": "Allow",
            "Resource": [
                {"Fn::GetAtt": [Match.string_like_regexp("OnEventLogs"), "Arn"]},
                {"Fn::GetAtt": [Match.string_like_regexp("IsCompleteLogs"), "Arn"]},
            ],
        },
    ]
    template.has_resource_properties(
        "AWS::IAM::ManagedPolicy",
        {"PolicyDocument": {"Statement": Match.exact(expected)}},
    )
    code_statement = statements[1]
    assert "cdk-hnb659fds-assets" in str(code_statement["Resource"])
    assert all(s["Resource"] != "*" for s in statements)


def test_compressed_model_data_and_grant(tmp_path: Path) -> None:
    template, data, stack = synth(tmp_path)
    model_data: ModelData = data
    assert model_data.model_data_source is None
    url = stack.resolve(model_data.model_data_url)
    assert url["Fn::GetAtt"][1] == props.ATTR_MODEL_DATA_URL
    statements = statements_of(template, "ExecRole")
    assert [s["Action"] for s in statements] == ["s3:GetObject", "kms:Decrypt"]
    assert props.ATTR_KEY in str(statements[0]["Resource"])


def test_uncompressed_uses_model_data_source(tmp_path: Path) -> None:
    template, data, _ = synth(tmp_path, compressed=False, source_uri="s3://user-models/clip/")
    assert data.model_data_url is None
    source = data.model_data_source
    assert source is not None
    s3_source = source.s3_data_source
    assert isinstance(s3_source, cdk.aws_sagemaker.CfnModel.S3DataSourceProperty)
    assert (s3_source.s3_data_type, s3_source.compression_type) == ("S3Prefix", "None")
    template.has_resource_properties("Custom::RepackedModelData", {props.COMPRESSED: "false"})
    worker = statements_of(template, "TextModelDataRole")
    assert worker[0]["Resource"] == partition_arn("user-models/clip/*")
    assert worker[1]["Resource"] == partition_arn("user-models")
    assert worker[1]["Condition"] == {"StringLike": {"s3:prefix": ["clip/*"]}}
    reader = statements_of(template, "ExecRole")
    assert [s["Action"] for s in reader] == ["s3:GetObject", "s3:ListBucket", "kms:Decrypt"]


def test_local_folder_source_is_packed_into_an_asset(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    template, _, _ = synth(tmp_path, source_uri=None, source_path=str(model))
    template.has_resource_properties(
        "Custom::RepackedModelData",
        {props.SOURCE_KEY: Match.string_like_regexp(r"^[0-9a-f]{64}\.gz$")},
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"source_uri": None}, "exactly one"),
        ({"source_uri": "s3://b/prefix/"}, "needs compressed=False"),
        ({"part_size": 1024}, "part_size"),
        ({"entry_module": "serve.py"}, "has no serve.py"),
    ],
)
def test_invalid_arguments(tmp_path: Path, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        synth(tmp_path, **kwargs)
