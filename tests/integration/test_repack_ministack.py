"""The repack custom resource's real lifecycle: deployed with the pinned CDK CLI to MiniStack.

The in-process tests (tests/constructs/repack) run the handler against moto, which does not
evaluate IAM. Here CloudFormation (MiniStack's engine) drives the real Provider framework (its
Node functions and the Step Functions waiter) and the handler (a host Python process with the
execution role's session credentials), and every S3/KMS call the handler makes is checked
against the role's policies (``AUTH=true``). One stack (``repack_app.py``: the product's artifact
store and one ``RepackedModelData``) goes through, in order: create (fast path), update to a
source with an old ``code/`` (stream path; the old artifact is deleted by CloudFormation's
cleanup, kept by ``RETAIN``), a bad update (rolled back with the handler's reason), a switch to
``DESTROY``, and destroy (``DELETE_COMPLETE``; the ``DESTROY`` artifact removed, the ``RETAIN``
one and the bucket kept).

What MiniStack covers and what it does not (1.5.33, read from its source):

* IAM: identity policies are evaluated with conditions. ``s3:prefix`` is supplied for
  ``ListBucket``/``ListBucketVersions`` only, so an Allow of ``s3:ListBucketMultipartUploads``
  conditioned on ``s3:prefix`` never applies, as on AWS, where that action has no such condition
  key (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html).
  ``test_worker_role_listing`` checks this directly with the role's own credentials.
* The TLS-only bucket policy cannot be exercised: with ``USE_SSL`` MiniStack serves HTTPS only.
* KMS key policies and the CloudWatch Logs service principal are not exercised (the handler's
  log writes go to MiniStack's log store without a key-policy check); no SageMaker resources.
* CDK's bucket auto-delete handler cannot run there, so the artifact store is RETAIN.
* The handler runs with the MiniStack venv's interpreter (the host's Python 3.11 and the boto3
  of ``requirements-ministack.txt``), not Lambda's Python 3.14 runtime.
* A failed Delete in the cleanup phase of an update does not fail the update (as on AWS): the
  test reads the stack events for ``DELETE_FAILED`` instead of trusting the stack status.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from hf_towers.tools.cdk_cli import REPO, cdk_command
from tests.constructs.repack.archives import check_archive, tar_gz, weights

from .ministack_server import REGION, MiniStack

pytestmark = pytest.mark.slow

STACK = "RepackMiniStack"
ACCOUNT = "000000000000"
SOURCE_BUCKET = "repack-sources"
CDK_TIMEOUT_S = 300
CODE = {p.name: p.read_bytes() for p in (REPO / "model_code" / "text").iterdir() if p.is_file()}
RESOURCE = "Custom::RepackedModelData"
APP = Path(__file__).resolve().parent / "repack_app.py"


def sources() -> dict[str, bytes]:
    """Source key -> bytes: no code/ (fast path), an old code/ (stream path), an escaping symlink."""
    model = {"config.json": b'{"model_type": "clip"}', "model.safetensors": weights(1 << 20)}
    link = tarfile.TarInfo("tokenizer.json")
    link.type, link.linkname = tarfile.SYMTYPE, "../../etc/passwd"
    return {
        "fast/model.tar.gz": tar_gz(model),
        "stream/model.tar.gz": tar_gz({**model, "code/inference.py": b"old = True\n"}),
        "bad/model.tar.gz": tar_gz(model, extra=[(link, None)]),
    }


@dataclass
class Lifecycle:
    """The deployed stack and the clients of one server; ``seen`` = stack events already read."""

    server: MiniStack
    outdir: Path
    seen: set[str] = field(default_factory=set)

    def client(self, service: str, **credentials: str) -> Any:
        env = self.server.client_env()
        return boto3.client(
            service,
            region_name=REGION,
            endpoint_url=self.server.endpoint,
            verify=env["AWS_CA_BUNDLE"],
            aws_access_key_id=credentials.get("key", env["AWS_ACCESS_KEY_ID"]),
            aws_secret_access_key=credentials.get("secret", env["AWS_SECRET_ACCESS_KEY"]),
            aws_session_token=credentials.get("token"),
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
        )

    def cdk(self, *args: str, expect_ok: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            cdk_command(args),
            # Not the repository: its cdk.json would make `cdk bootstrap` synthesize the product.
            cwd=self.outdir.parent,
            env=self.server.client_env(),
            capture_output=True,
            text=True,
            timeout=CDK_TIMEOUT_S,
            check=False,
        )
        if (result.returncode == 0) != expect_ok:
            raise AssertionError(
                f"cdk {' '.join(args[:1])} exited {result.returncode} (expected "
                f"{'0' if expect_ok else 'non-zero'})\n--- stdout\n{result.stdout[-4000:]}\n"
                f"--- stderr\n{result.stderr[-4000:]}\n--- MiniStack log\n"
                f"{self.server.log_tail(40)}"
            )
        return result

    def app(self, source_key: str, removal: str) -> list[str]:
        """The CLI arguments naming the app, its context and the cloud assembly folder."""
        return [
            "--app",
            f"{sys.executable} {APP}",
            "-c",
            f"source_uri=s3://{SOURCE_BUCKET}/{source_key}",
            "-c",
            f"removal={removal}",
            "--output",
            str(self.outdir),
        ]

    def deploy(self, source_key: str, removal: str, *, expect_ok: bool = True) -> None:
        # Change-set deploy (the CLI's default), no --watch: as a pipeline deploys.
        self.cdk(
            "deploy",
            STACK,
            *self.app(source_key, removal),
            "--require-approval",
            "never",
            "--progress",
            "events",
            expect_ok=expect_ok,
        )

    def new_events(self) -> list[dict[str, Any]]:
        """Stack events since the last call, oldest first."""
        cfn = self.client("cloudformation")
        events = [
            e
            for page in cfn.get_paginator("describe_stack_events").paginate(StackName=STACK)
            for e in page["StackEvents"]
            if e["EventId"] not in self.seen
        ]
        self.seen.update(e["EventId"] for e in events)
        return list(reversed(events))

    def stack(self) -> dict[str, Any]:
        stack: dict[str, Any] = self.client("cloudformation").describe_stacks(StackName=STACK)[
            "Stacks"
        ][0]
        return stack

    def outputs(self) -> dict[str, str]:
        return {o["OutputKey"]: o["OutputValue"] for o in self.stack().get("Outputs", [])}

    def artifact(self, uri: str) -> bytes:
        bucket, key = uri.removeprefix("s3://").split("/", 1)
        body: bytes = self.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
        return body

    def exists(self, uri: str) -> bool:
        bucket, key = uri.removeprefix("s3://").split("/", 1)
        try:
            self.client("s3").head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("404", "NoSuchKey"):
                return False
            raise
        return True

    def keys(self, bucket: str) -> list[str]:
        listed = self.client("s3").list_objects_v2(Bucket=bucket).get("Contents", [])
        return sorted(o["Key"] for o in listed)


def failures(events: list[dict[str, Any]]) -> list[str]:
    return [
        f"{e['LogicalResourceId']} {e['ResourceStatus']}: {e.get('ResourceStatusReason', '')}"
        for e in events
        if e["ResourceStatus"].endswith("_FAILED")
    ]


def check_worker_listing(run: Lifecycle, bucket: str, role_arn: str) -> None:
    """The worker role's listing rights, checked by MiniStack's IAM with the role's credentials.

    ``s3:ListBucket`` is conditioned on ``s3:prefix`` (``text/*``) and MiniStack evaluates that
    key for it; ``s3:ListBucketMultipartUploads`` has no ``s3:prefix`` key on AWS, so it must be
    allowed without that condition (Delete lists the open uploads under the tower's prefix).
    """
    # MiniStack lets the account root assume a role whose trust policy names a service.
    creds = run.client("sts").assume_role(RoleArn=role_arn, RoleSessionName="probe")
    s3 = run.client(
        "s3",
        key=creds["Credentials"]["AccessKeyId"],
        secret=creds["Credentials"]["SecretAccessKey"],
        token=creds["Credentials"]["SessionToken"],
    )
    s3.list_objects_v2(Bucket=bucket, Prefix="text/")
    with pytest.raises(ClientError, match="AccessDenied"):
        s3.list_objects_v2(Bucket=bucket, Prefix="other/")
    try:
        s3.list_multipart_uploads(Bucket=bucket, Prefix="text/")
    except ClientError as exc:
        raise AssertionError(
            "the repack worker role may not list the multipart uploads of the artifact bucket "
            f"(its Delete does): {exc}"
        ) from exc


def code_of(archive: bytes) -> dict[str, bytes | None]:
    tree = check_archive(archive)
    return {k.removeprefix("code/"): v for k, v in tree.items() if k.startswith("code/")}


@pytest.fixture(scope="module")
def lifecycle(ministack: MiniStack, tmp_path_factory: pytest.TempPathFactory) -> Lifecycle:
    """The bootstrapped environment, with the three sources uploaded."""
    run = Lifecycle(ministack, Path(tmp_path_factory.mktemp("cdk")) / "cdk.out")
    # DefaultStackSynthesizer: file assets (the handler code, the tower's code) are published to
    # the bootstrap bucket through the bootstrap roles, so the environment is bootstrapped like a
    # real account. BootstraplessSynthesizer has nowhere to publish file assets.
    run.cdk("bootstrap", f"aws://{ACCOUNT}/{REGION}")
    s3 = run.client("s3")
    s3.create_bucket(Bucket=SOURCE_BUCKET)
    for key, data in sources().items():
        s3.put_object(Bucket=SOURCE_BUCKET, Key=key, Body=data)
    return run


def test_lifecycle(lifecycle: Lifecycle) -> None:
    run = lifecycle
    expected_code: dict[str, bytes | None] = dict(CODE)

    # Create: fast path (the source has no code/), RETAIN.
    run.deploy("fast/model.tar.gz", "retain")
    events = run.new_events()
    assert not failures(events), failures(events)
    assert run.stack()["StackStatus"] == "CREATE_COMPLETE"
    out = run.outputs()
    bucket, first = out["ArtifactBucket"], out["ModelDataUrl"]
    assert first.startswith(f"s3://{bucket}/text/") and first.endswith("/model.tar.gz")
    assert code_of(run.artifact(first)) == expected_code
    head = run.client("s3").head_object(Bucket=bucket, Key=first.split("/", 3)[3])
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"].endswith(out["ArtifactKeyArn"].rsplit("/", 1)[1])
    check_worker_listing(run, bucket, out["WorkerRoleArn"])

    # Update: a new source with an old code/ (stream path). CloudFormation then deletes the old
    # resource (its properties say RetainOnDelete): that Delete must succeed and keep the object.
    run.deploy("stream/model.tar.gz", "retain")
    events = run.new_events()
    assert not failures(events), failures(events)
    assert run.stack()["StackStatus"] == "UPDATE_COMPLETE"
    second = run.outputs()["ModelDataUrl"]
    assert second != first
    assert code_of(run.artifact(second)) == expected_code  # old code/ replaced
    assert run.exists(first), "RETAIN: the replaced artifact must be kept"

    # Bad update: an escaping symlink. The update fails with the handler's message and rolls
    # back to the previous artifact; nothing is left half-written.
    run.deploy("bad/model.tar.gz", "retain", expect_ok=False)
    events = run.new_events()
    reasons = [
        e.get("ResourceStatusReason", "")
        for e in events
        if e["ResourceType"] == RESOURCE and e["ResourceStatus"] == "UPDATE_FAILED"
    ]
    assert reasons, f"no UPDATE_FAILED of the repack resource in {failures(events)}"
    assert f"s3://{SOURCE_BUCKET}/bad/model.tar.gz" in reasons[0], reasons[0]
    assert "symlink pointing outside the archive" in reasons[0], reasons[0]
    unexpected = failures(
        [
            e
            for e in events
            if e["ResourceType"] != "AWS::CloudFormation::Stack"
            and (e["ResourceType"], e["ResourceStatus"]) != (RESOURCE, "UPDATE_FAILED")
        ]
    )
    assert not unexpected, f"the rollback itself failed: {unexpected}"
    assert run.stack()["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"
    assert run.outputs()["ModelDataUrl"] == second
    assert run.client("s3").list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert sorted(k for k in run.keys(bucket) if k.endswith("model.tar.gz")) == sorted(
        uri.split("/", 3)[3] for uri in (first, second)
    )

    # Switch the resource to DESTROY (same inputs: same artifact, updated in place).
    run.deploy("stream/model.tar.gz", "destroy")
    events = run.new_events()
    assert not failures(events), failures(events)
    assert run.outputs()["ModelDataUrl"] == second

    # Destroy: DELETE_COMPLETE; the DESTROY artifact and its state go, the RETAIN one and the
    # (RETAIN) bucket stay.
    stack_id = run.stack()["StackId"]
    run.cdk("destroy", STACK, *run.app("stream/model.tar.gz", "destroy"), "--force")
    deleted = run.client("cloudformation").describe_stacks(StackName=stack_id)["Stacks"][0]
    assert deleted["StackStatus"] == "DELETE_COMPLETE"
    events = [
        e
        for e in run.client("cloudformation").describe_stack_events(StackName=stack_id)[
            "StackEvents"
        ]
        if e["EventId"] not in run.seen
    ]
    assert not failures(events), failures(events)
    assert not run.exists(second), "DESTROY: the artifact must be deleted with the resource"
    assert run.exists(first), "RETAIN: an artifact replaced earlier must still be there"
    run.client("s3").head_bucket(Bucket=bucket)  # the artifact store is RETAIN
    assert [k for k in run.keys(bucket) if k.startswith("text/")] == [first.split("/", 3)[3]]
