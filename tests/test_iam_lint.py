"""Every IAM policy document of every synthesized stack, linted with parliament.

parliament carries AWS's tables of actions, resource types and condition keys (the Service
Authorization Reference). The apps linted: every committed config (``config/default.yaml`` via
``app.py``; ``config/dev|staging|prod.yaml`` as the stages of the pipeline app of
``config/pipeline.yaml``, which build the same stacks with ``add_environment``; the pipeline stack
and its cross-region support stack), the operations matrix and a ``compressed_model_data: false``
tower. A finding fails unless ``tests/iam_lint_allowlist.yaml`` lists it with its reason; an entry
matching no finding fails too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from aws_cdk import App, Environment, cx_api

from hf_towers.config import load_config
from hf_towers.config.pipeline import load_pipeline_config, load_pipeline_environments
from hf_towers.environment import add_environment
from hf_towers.feature_flags import FEATURE_FLAGS
from hf_towers.pipeline.pipeline_stack import PipelineStack
from tests.iam_lint import (
    DEFAULT_ACCOUNT,
    DEFAULT_REGION,
    IDENTITY,
    RESOURCE,
    TRUST,
    Allowed,
    Finding,
    PolicyDocument,
    Renderer,
    RenderError,
    StackTemplate,
    lint,
    load_allow_list,
    policy_documents,
    rendered_variants,
    triage,
)
from tests.stacks.config_matrix import matrix
from tests.synth_helpers import build, default_data

REPO = Path(__file__).resolve().parent.parent
ALLOW_LIST = REPO / "tests" / "iam_lint_allowlist.yaml"
PIPELINE_CONFIG = "config/pipeline.yaml"


def _stacks(app_id: str, assembly: cx_api.CloudAssembly) -> list[StackTemplate]:
    found = []
    for artifact in assembly.stacks_recursively:
        env = artifact.environment
        account = env.account if env.account.isdigit() else DEFAULT_ACCOUNT
        region = env.region if env.region != "unknown-region" else DEFAULT_REGION
        found.append(StackTemplate(app_id, artifact.stack_name, artifact.template, account, region))
    return found


def _uncompressed() -> dict[str, Any]:
    data = default_data()
    data["towers"] = {"vision": {**data["towers"]["vision"], "compressed_model_data": False}}
    return data


@pytest.fixture(scope="module")
def linted_apps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[StackTemplate]]:
    """App id -> its synthesized stacks (each app synthesized once, no nag: IAM only)."""
    out = tmp_path_factory.mktemp("iam-lint")
    apps: dict[str, list[StackTemplate]] = {}
    app = App(context=FEATURE_FLAGS, outdir=str(out / "default"))
    add_environment(app, load_config(REPO / "config" / "default.yaml"))
    apps["default.yaml"] = _stacks("default.yaml", app.synth())

    config = load_pipeline_config(REPO / PIPELINE_CONFIG)
    app = App(context=FEATURE_FLAGS, outdir=str(out / "pipeline"))
    PipelineStack(  # as pipeline_app.py builds it
        app,
        f"{config.project}-pipeline",
        stack_name=f"{config.project}-pipeline",
        config=config,
        environments=load_pipeline_environments(config, REPO),
        pipeline_config_file=PIPELINE_CONFIG,
        env=Environment(account=config.tooling_account, region=config.tooling_region),
    )
    apps["pipeline.yaml"] = _stacks("pipeline.yaml", app.synth())

    # Every config a user can write: the schema-derived matrix (tests/stacks/config_matrix.py).
    configs = {f"matrix-{name}": data for name, data in matrix().items()}
    configs["operations-matrix"] = configs.pop("matrix-operations")
    for app_id, data in (*configs.items(), ("uncompressed", _uncompressed())):
        app, _ = build(data, outdir=out / app_id)
        apps[app_id] = _stacks(app_id, app.synth())
    return apps


@pytest.fixture(scope="module")
def findings(linted_apps: dict[str, list[StackTemplate]]) -> list[Finding]:
    stacks = [s for group in linted_apps.values() for s in group]
    renderer = Renderer(stacks)
    found: list[Finding] = []
    for stack in stacks:
        documents, _ = policy_documents(stack)
        for document in documents:
            found += lint(renderer, document)
    return found


def test_every_committed_config_is_linted(linted_apps: dict[str, list[StackTemplate]]) -> None:
    pipeline = yaml.safe_load((REPO / PIPELINE_CONFIG).read_text())
    staged = {Path(p).name for p in pipeline["environments"]}
    committed = {p.name for p in (REPO / "config").glob("*.yaml")}
    assert committed == {"default.yaml", "pipeline.yaml", *staged}, "a config nobody lints"
    names = {s.name for s in linted_apps["pipeline.yaml"]}
    for env_file in staged:
        environment = yaml.safe_load((REPO / "config" / env_file).read_text())["environment"]
        assert f"hf-towers-{environment}-access" in names  # the stage's stacks were synthesized
    assert "hf-towers-pipeline" in names
    tower_stacks = {s.name for s in linted_apps["uncompressed"]}
    assert "hf-towers-dev-tower-vision" in tower_stacks


def test_every_policy_document_is_collected(linted_apps: dict[str, list[StackTemplate]]) -> None:
    kinds: set[str] = set()
    types: set[str] = set()
    for group in linted_apps.values():
        for stack in group:
            documents, uncollected = policy_documents(stack)
            assert uncollected == [], "a Statement the linter does not collect: add its type"
            kinds |= {d.kind for d in documents}
            types |= {d.resource_type for d in documents}
    assert kinds == {IDENTITY, TRUST, RESOURCE}
    assert {
        "AWS::IAM::ManagedPolicy",
        "AWS::IAM::Policy",
        "AWS::IAM::Role",
        "AWS::S3::BucketPolicy",
        "AWS::KMS::Key",
        "AWS::SNS::TopicPolicy",
    } <= types


def test_no_finding_outside_the_allow_list(findings: list[Finding]) -> None:
    unlisted, _ = triage(findings, load_allow_list(ALLOW_LIST))
    assert not unlisted, "IAM findings (fix the policy, or list with a reason):\n" + "\n".join(
        str(f) for f in dict.fromkeys(unlisted)
    )


def test_no_stale_allow_list_entry(findings: list[Finding]) -> None:
    _, stale = triage(findings, load_allow_list(ALLOW_LIST))
    assert not stale, f"allow-list entries matching no finding (remove them): {stale}"


def test_repack_and_deployer_statements_are_linted_clean(findings: list[Finding]) -> None:
    """The two evaluation bugs of issue 11 §3 stay fixed, whatever the allow-list says."""
    bad = [
        f
        for f in findings
        if "s3:ListBucketMultipartUploads" in f.actions
        or f.actions in (("sagemaker:CreateEndpoint",), ("sagemaker:UpdateEndpoint",))
    ]
    assert bad == []


# --- the renderer ------------------------------------------------------------------------------

TEMPLATE: dict[str, Any] = {
    "Conditions": {"IsProd": {"Fn::Equals": ["a", "b"]}},
    "Resources": {
        "Bucket": {"Type": "AWS::S3::Bucket", "Properties": {}},
        "Named": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "my-bucket"}},
        "Key": {"Type": "AWS::KMS::Key", "Properties": {}},
        "Role": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": {}}},
        "Logs": {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": "/aws/x"}},
        "Topic": {"Type": "AWS::SNS::Topic", "Properties": {}},
        "Machine": {"Type": "AWS::StepFunctions::StateMachine", "Properties": {}},
        "Fn": {"Type": "AWS::Lambda::Function", "Properties": {}},
        "Endpoint": {"Type": "AWS::SageMaker::Endpoint", "Properties": {"EndpointName": "ep"}},
        "Config": {"Type": "AWS::SageMaker::EndpointConfig", "Properties": {}},
        "Model": {"Type": "AWS::SageMaker::Model", "Properties": {}},
        "Repack": {
            "Type": "Custom::RepackedModelData",
            "Properties": {"OutputPrefix": "text", "OutputBucket": "b", "Compressed": "false"},
        },
        "Odd": {"Type": "AWS::Foo::Bar", "Properties": {}},
    },
    "Outputs": {"Out": {"Value": {"Fn::GetAtt": ["Key", "Arn"]}, "Export": {"Name": "k:Arn"}}},
}
STACK = StackTemplate("app", "one", TEMPLATE, "111111111111", "eu-west-1")
OTHER = StackTemplate("app", "two", {"Resources": {}}, "111111111111", "eu-west-1")
ELSEWHERE = StackTemplate("other-app", "three", {"Resources": {}})


@pytest.fixture
def renderer() -> Renderer:
    return Renderer([STACK, OTHER, ELSEWHERE])


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"Ref": "Bucket"}, "bucket"),
        ({"Fn::GetAtt": ["Bucket", "Arn"]}, "arn:aws:s3:::bucket"),
        ({"Fn::GetAtt": ["Named", "Arn"]}, "arn:aws:s3:::my-bucket"),
        ({"Fn::GetAtt": ["Role", "Arn"]}, "arn:aws:iam::111111111111:role/Role"),
        ({"Fn::GetAtt": ["Logs", "Arn"]}, "arn:aws:logs:eu-west-1:111111111111:log-group:/aws/x:*"),
        ({"Ref": "Topic"}, "arn:aws:sns:eu-west-1:111111111111:Topic"),
        ({"Ref": "Machine"}, "arn:aws:states:eu-west-1:111111111111:stateMachine:Machine"),
        ({"Fn::GetAtt": ["Fn", "Arn"]}, "arn:aws:lambda:eu-west-1:111111111111:function:Fn"),
        ({"Ref": "Endpoint"}, "arn:aws:sagemaker:eu-west-1:111111111111:endpoint/ep"),
        ({"Ref": "Config"}, "arn:aws:sagemaker:eu-west-1:111111111111:endpoint-config/config"),
        ({"Ref": "Model"}, "arn:aws:sagemaker:eu-west-1:111111111111:model/model"),
        ({"Fn::GetAtt": ["Repack", "Key"]}, "text/0123456789abcdef0123456789abcdef/"),
        ({"Ref": "AWS::Partition"}, "aws"),
        ({"Ref": "AWS::URLSuffix"}, "amazonaws.com"),
        (
            {"Fn::Join": [":", ["a", {"Ref": "AWS::Region"}, {"Ref": "AWS::AccountId"}]]},
            "a:eu-west-1:111111111111",
        ),
        (
            {"Fn::Sub": "arn:${AWS::Partition}:s3:::${Bucket}/${!aws:username}"},
            "arn:aws:s3:::bucket/${aws:username}",
        ),
        (
            {"Fn::Sub": ["${Role.Arn}/${x}", {"x": {"Ref": "AWS::Region"}}]},
            "arn:aws:iam::111111111111:role/Role/eu-west-1",
        ),
        ({"Fn::Select": [1, {"Fn::Split": ["/", "a/b/c"]}]}, "b"),
    ],
)
def test_renders_intrinsics_to_values_of_the_right_type(
    renderer: Renderer, value: Any, expected: str
) -> None:
    assert renderer.render(value, STACK) == expected


def test_kms_key_arn_and_ref_are_the_same_uuid(renderer: Renderer) -> None:
    arn = renderer.render({"Fn::GetAtt": ["Key", "Arn"]}, STACK)
    key_id = renderer.render({"Ref": "Key"}, STACK)
    assert arn == f"arn:aws:kms:eu-west-1:111111111111:key/{key_id}"
    assert len(key_id) == 36


def test_import_value_renders_the_export_of_the_same_app(renderer: Renderer) -> None:
    key_arn = renderer.render({"Fn::GetAtt": ["Key", "Arn"]}, STACK)
    assert renderer.render({"Fn::ImportValue": "k:Arn"}, OTHER) == key_arn
    with pytest.raises(RenderError, match="exported by no stack of other-app"):
        renderer.render({"Fn::ImportValue": "k:Arn"}, ELSEWHERE)


def test_fn_if_renders_the_branch_of_the_given_condition_and_drops_no_value(
    renderer: Renderer,
) -> None:
    value = [{"Fn::If": ["IsProd", "prod", {"Ref": "AWS::NoValue"}]}, "always"]
    assert renderer.render(value, STACK, {"IsProd": True}) == ["prod", "always"]
    assert renderer.render(value, STACK, {"IsProd": False}) == ["always"]
    with pytest.raises(RenderError, match="no value given for condition 'IsProd'"):
        renderer.render(value, STACK)
    with pytest.raises(RenderError, match="unknown condition 'Nope'"):
        renderer.render({"Fn::If": ["Nope", 1, 2]}, STACK, {"Nope": True})


def test_a_document_with_fn_if_is_linted_once_per_branch(renderer: Renderer) -> None:
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": {"Fn::If": ["IsProd", "arn:aws:s3:::a/*", "arn:aws:s3:::b/*"]},
            }
        ],
    }
    doc = PolicyDocument(
        STACK, "P", "AWS::IAM::ManagedPolicy", "PolicyDocument", IDENTITY, document
    )
    resources = [v["Statement"][0]["Resource"] for v in rendered_variants(renderer, doc)]
    assert resources == ["arn:aws:s3:::a/*", "arn:aws:s3:::b/*"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"Fn::GetAZs": ""}, "cannot render intrinsic Fn::GetAZs"),
        ({"Ref": "SomeParameter"}, "cannot render Ref 'SomeParameter'"),
        ({"Fn::GetAtt": ["Odd", "Arn"]}, "no ARN format for Odd of type AWS::Foo::Bar"),
        ({"Fn::GetAtt": ["Bucket", "WebsiteURL"]}, "cannot render Fn::GetAtt Bucket.WebsiteURL"),
        ({"Fn::GetAtt": ["Repack", "Nope"]}, "cannot render Fn::GetAtt Repack.Nope"),
        ({"Fn::GetAtt": ["Missing", "Arn"]}, "unknown resource 'Missing'"),
    ],
)
def test_fails_loudly_on_what_it_cannot_render(
    renderer: Renderer, value: Any, message: str
) -> None:
    with pytest.raises(RenderError, match=message):
        renderer.render(value, STACK)


# --- collecting and linting -------------------------------------------------------------------


def _lint_statements(*statements: dict[str, Any], kind: str = IDENTITY) -> list[Finding]:
    template = {"Resources": {"P": {"Type": "AWS::IAM::ManagedPolicy", "Properties": {}}}}
    stack = StackTemplate("app", "s", template)
    document = {"Version": "2012-10-17", "Statement": list(statements)}
    doc = PolicyDocument(stack, "P", "AWS::IAM::ManagedPolicy", "PolicyDocument", kind, document)
    return lint(Renderer([stack]), doc)


def test_lint_reports_a_condition_key_the_action_does_not_have() -> None:
    """The repack's old statement: s3:prefix never applies to ListBucketMultipartUploads."""
    old = {
        "Effect": "Allow",
        "Action": ["s3:ListBucket", "s3:ListBucketMultipartUploads"],
        "Resource": "arn:aws:s3:::bucket",
        "Condition": {"StringLike": {"s3:prefix": ["text/*"]}},
    }
    (finding,) = _lint_statements(old)
    assert (finding.issue, finding.actions) == (
        "UNKNOWN_CONDITION_FOR_ACTION",
        ("s3:ListBucketMultipartUploads",),
    )
    fixed: list[dict[str, Any]] = [
        {**old, "Action": "s3:ListBucket"},
        {
            "Effect": "Allow",
            "Action": "s3:ListBucketMultipartUploads",
            "Resource": "arn:aws:s3:::bucket",
        },
    ]
    assert _lint_statements(*fixed) == []


def test_lint_reports_a_required_resource_type_that_is_missing() -> None:
    """The deployer's old statement: CreateEndpoint/UpdateEndpoint need the endpoint config too."""
    endpoint = "arn:aws:sagemaker:us-east-1:123456789012:endpoint/e"
    old = {
        "Effect": "Allow",
        "Action": ["sagemaker:CreateEndpoint", "sagemaker:UpdateEndpoint"],
        "Resource": endpoint,
    }
    assert {(f.issue, f.actions) for f in _lint_statements(old)} == {
        ("RESOURCE_MISMATCH", ("sagemaker:CreateEndpoint",)),
        ("RESOURCE_MISMATCH", ("sagemaker:UpdateEndpoint",)),
    }
    config = "arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/*"
    assert _lint_statements({**old, "Resource": [endpoint, config]}) == []


def test_trust_policies_are_linted_with_their_role_as_resource() -> None:
    template = {
        "Resources": {
            "Role": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "AssumeRolePolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Action": "sts:AssumeRole",
                                "Principal": {"Service": "lambda.amazonaws.com"},
                            },
                            {
                                "Effect": "Allow",
                                "Action": "sts:AssumeRole",
                                "Principal": {"AWS": "not-an-account"},
                            },
                        ],
                    }
                },
            }
        }
    }
    stack = StackTemplate("app", "s", template)
    (doc,), uncollected = policy_documents(stack)
    assert (doc.kind, uncollected) == (TRUST, [])
    (rendered,) = rendered_variants(Renderer([stack]), doc)
    assert {s["Resource"] for s in rendered["Statement"]} == {"arn:aws:iam::123456789012:role/Role"}
    (finding,) = lint(Renderer([stack]), doc)
    assert finding.issue == "UNKNOWN_PRINCIPAL"  # the valid service principal passes


def test_a_statement_in_an_uncollected_place_is_reported() -> None:
    template = {
        "Resources": {
            "Thing": {
                "Type": "AWS::Foo::Bar",
                "Properties": {"Access": {"Doc": {"Statement": [{"Effect": "Allow"}]}}},
            },
            "Bucket": {
                "Type": "AWS::S3::BucketPolicy",
                "Properties": {"PolicyDocument": {"Statement": []}},
            },
        }
    }
    documents, uncollected = policy_documents(StackTemplate("app", "s", template))
    assert [(d.logical_id, d.kind) for d in documents] == [("Bucket", RESOURCE)]
    assert uncollected == ["app s Thing.Access.Doc"]


# --- the allow-list ---------------------------------------------------------------------------


def _finding(**overrides: Any) -> Finding:
    base: dict[str, Any] = {
        "issue": "RESOURCE_MISMATCH",
        "label": "app s P.PolicyDocument",
        "stack": "s",
        "resource_type": "AWS::IAM::Policy",
        "kind": IDENTITY,
        "sid": "",
        "actions": ("s3:ListJobs",),
        "written": ("s3:List*",),
        "resources": ("arn:aws:s3:::b",),
        "detail": "",
    }
    return Finding(**{**base, **overrides})


def test_allow_list_matching_is_exact_on_written_as_and_finds_stale_entries() -> None:
    wildcard = Allowed(issue="RESOURCE_MISMATCH", reason="r", written_as="s3:List*")
    from_wildcard = _finding()
    literal = _finding(
        actions=("s3:ListBucketMultipartUploads",), written=("s3:ListBucketMultipartUploads",)
    )
    unlisted, stale = triage([from_wildcard, literal], [wildcard])
    assert unlisted == [literal]  # "s3:List*" is not a glob here: a literal action is not covered
    assert stale == []
    never = Allowed(issue="RESOURCE_STAR", reason="r")
    assert triage([from_wildcard], [wildcard, never]) == ([], [never])
    assert Allowed(issue="RESOURCE_MISMATCH", reason="r", document="* P.*").matches(from_wildcard)
    assert not Allowed(issue="RESOURCE_MISMATCH", reason="r", stack="x").matches(from_wildcard)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("allowed: {}", "expected a top-level 'allowed:' list"),
        ("allowed: [plain]", r"allowed\[0\]: expected a mapping"),
        ("allowed:\n  - {issue: X}", r"allowed\[0\]: 'reason' is required"),
        ("allowed:\n  - {issue: X, reason: y, actoin: z}", r"unknown key\(s\) \['actoin'\]"),
    ],
)
def test_a_malformed_allow_list_names_file_entry_and_key(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "list.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as raised:
        load_allow_list(path)
    assert str(path) in str(raised.value)


def test_the_committed_allow_list_gives_every_entry_a_reason_citing_aws() -> None:
    for entry in load_allow_list(ALLOW_LIST):
        assert "https://docs.aws.amazon.com/" in entry.reason or "nag.py" in entry.reason, entry


def test_pipeline_source_may_use_its_codeconnections_connection(
    linted_apps: dict[str, list[StackTemplate]],
) -> None:
    """CDK grants only codestar-connections:UseConnection, which a codeconnections ARN never
    matches (the prefix must match, docs.aws.amazon.com/dtconsole/latest/userguide/rename.html)."""
    connection = load_pipeline_config(REPO / PIPELINE_CONFIG).connection_arn
    assert connection.startswith("arn:aws:codeconnections:")
    (pipeline,) = [s for s in linted_apps["pipeline.yaml"] if s.name == "hf-towers-pipeline"]
    granting = [
        statement
        for document in policy_documents(pipeline)[0]
        if document.kind == IDENTITY
        for statement in document.document["Statement"]
        if statement.get("Resource") == connection
    ]
    actions = {
        a
        for s in granting
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert "codeconnections:UseConnection" in actions
