"""CDK app of the MiniStack tier: the product's artifact store and one ``RepackedModelData``.

No SageMaker resources (MiniStack has none). Context: ``source_uri`` (``s3://bucket/key.tar.gz``
uploaded by the test before each deploy), ``removal`` (``retain`` or ``destroy``: the repack
resource's removal policy, i.e. whether Delete removes the generated artifact), ``stack_name``.
The artifact store itself is always RETAIN: CDK's bucket auto-delete handler (DESTROY) cannot run
on MiniStack. Run by ``test_repack_ministack.py`` with the pinned CDK CLI.
"""

from __future__ import annotations

import sys
from pathlib import Path

from aws_cdk import App, CfnOutput, DefaultStackSynthesizer, Environment, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # the CLI runs this file as a script: make hf_towers importable

from hf_towers.constructs.artifact_store import ArtifactStore  # noqa: E402
from hf_towers.constructs.repack import RepackedModelData  # noqa: E402
from hf_towers.feature_flags import FEATURE_FLAGS  # noqa: E402

ACCOUNT = "000000000000"  # MiniStack's default account (MINISTACK_ACCOUNT_ID)
REGION = "us-east-1"
TOWER = "text"


def build(app: App) -> Stack:
    source_uri = str(app.node.get_context("source_uri"))
    removal = str(app.node.try_get_context("removal") or "retain")
    if removal not in ("retain", "destroy"):
        raise SystemExit(f"context removal must be retain or destroy, not {removal!r}")
    stack = Stack(
        app,
        str(app.node.try_get_context("stack_name") or "RepackMiniStack"),
        env=Environment(account=ACCOUNT, region=REGION),
        # The modern synthesizer: file assets go to the bootstrap bucket (`cdk bootstrap` against
        # the emulator) through its file-publishing role.
        synthesizer=DefaultStackSynthesizer(),
    )
    store = ArtifactStore(stack, "Artifacts", removal_policy=RemovalPolicy.RETAIN)
    data = RepackedModelData(
        stack,
        "TextModelData",
        tower=TOWER,
        source_uri=source_uri,
        code_dir=str(REPO / "model_code" / "text"),
        bucket=store.bucket,
        key=store.key,
        removal_policy=RemovalPolicy.DESTROY if removal == "destroy" else RemovalPolicy.RETAIN,
    )
    CfnOutput(stack, "ArtifactBucket", value=store.bucket.bucket_name)
    CfnOutput(stack, "ArtifactKeyArn", value=store.key.key_arn)
    CfnOutput(stack, "ModelDataUrl", value=str(data.model_data_url))
    role = data.node.find_child("Role")
    assert isinstance(role, iam.Role)
    CfnOutput(stack, "WorkerRoleArn", value=role.role_arn)
    return stack


def main() -> None:
    app = App(context=FEATURE_FLAGS)
    build(app)
    app.synth()


if __name__ == "__main__":
    main()
