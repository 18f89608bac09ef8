"""``hf_towers.registry``: resolving model_package towers against a (moto) Model Registry."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws

from hf_towers.config import parse_config
from hf_towers.config.models import EnvironmentConfig
from hf_towers.config.packages import ModelPackage
from hf_towers.registry import RegistryError, resolve_environment, resolve_package
from tests.synth_helpers import default_data

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/infer:1"


@pytest.fixture
def client() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("sagemaker", region_name="us-east-1")


def register(client: Any, group: str, status: str, *urls: str) -> str:
    """A new version of ``group`` (created with the group on first use); its ARN."""
    if not client.list_model_package_groups(NameContains=group)["ModelPackageGroupSummaryList"]:
        client.create_model_package_group(ModelPackageGroupName=group)
    containers = [{"Image": IMAGE, "ModelDataUrl": url} for url in urls] or [{"Image": IMAGE}]
    arn: str = client.create_model_package(
        ModelPackageGroupName=group,
        ModelApprovalStatus=status,
        InferenceSpecification={
            "Containers": containers,
            "SupportedContentTypes": ["application/json"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
    )["ModelPackageArn"]
    return arn


def _url(version: int) -> str:
    return f"s3://example-ml-registry/g/{version}/model.tar.gz"


def test_latest_approved_is_the_newest_approved_version(client: Any) -> None:
    register(client, "g", "Approved", _url(1))
    newest = register(client, "g", "Approved", _url(2))
    register(client, "g", "PendingManualApproval", _url(3))
    register(client, "g", "Rejected", _url(4))
    entry = resolve_package(client, "text", ModelPackage(group="g"), NOW)
    assert (entry.version, entry.model_package_arn, entry.model_data_url) == (2, newest, _url(2))
    assert entry.requested == "latest-approved"
    assert entry.approval_status == "Approved"
    assert entry.resolved_at == NOW


def test_a_pinned_version_resolves_to_that_version(client: Any) -> None:
    first = register(client, "g", "Approved", _url(1))
    register(client, "g", "Approved", _url(2))
    entry = resolve_package(client, "text", ModelPackage(group="g", version=1), NOW)
    assert (entry.version, entry.model_package_arn, entry.requested) == (1, first, 1)


@pytest.mark.parametrize(
    ("statuses", "version", "expected"),
    [
        ([], "latest-approved", "no Approved package version in the group"),
        (["PendingManualApproval"], "latest-approved", "no Approved package version"),
        (["Approved"], 5, "version 5 does not exist"),
        (["Approved", "Rejected"], 2, "version 2 is Rejected, not Approved"),
        (["PendingManualApproval"], 1, "version 1 is PendingManualApproval, not Approved"),
    ],
)
def test_what_cannot_deploy_is_refused_with_the_fix(
    client: Any, statuses: list[str], version: Any, expected: str
) -> None:
    client.create_model_package_group(ModelPackageGroupName="g")
    for i, status in enumerate(statuses, start=1):
        register(client, "g", status, _url(i))
    with pytest.raises(RegistryError) as info:
        resolve_package(client, "text", ModelPackage(group="g", version=version), NOW)
    assert expected in str(info.value)
    assert "towers.text.model_package (group 'g')" in str(info.value)


@pytest.mark.parametrize("urls", [(), (_url(1), _url(2))])
def test_a_package_without_exactly_one_model_data_url_is_refused(
    client: Any, urls: tuple[str, ...]
) -> None:
    register(client, "g", "Approved", *urls)
    with pytest.raises(RegistryError, match=f"has {len(urls)} container ModelDataUrls"):
        resolve_package(client, "text", ModelPackage(group="g"), NOW)


def _config() -> EnvironmentConfig:
    data = default_data()
    qa = data["towers"]["qa"]
    del qa["model_uri"]
    qa["model_package"] = {"group": "qa", "version": 1}
    text = data["towers"]["text"]
    del text["model_uri"], text["model_version"]
    text["model_package"] = {"group": "g"}
    return parse_config(data, "config/dev.yaml", require_resolved=False)


def test_an_environment_resolves_every_package_tower_only(client: Any) -> None:
    register(client, "g", "Approved", _url(1))
    register(client, "qa", "Approved", "s3://example-ml-registry/qa/1/model.tar.gz")
    resolved = resolve_environment(_config(), client, now=lambda: NOW)
    assert resolved.environment == "dev"
    assert sorted(resolved.towers) == ["qa", "text"]  # vision keeps its model_uri
    # What config loading then accepts: the file binds.
    assert resolved.towers["qa"].version == 1


def test_resolving_again_without_a_new_approval_rewrites_nothing(client: Any) -> None:
    register(client, "g", "Approved", _url(1))
    register(client, "qa", "Approved", "s3://example-ml-registry/qa/1/model.tar.gz")
    first = resolve_environment(_config(), client, now=lambda: NOW)
    later = datetime(2026, 12, 2, tzinfo=UTC)
    again = resolve_environment(_config(), client, now=lambda: later, previous=first)
    assert again.dumps() == first.dumps()
    register(client, "g", "Approved", _url(2))
    bumped = resolve_environment(_config(), client, now=lambda: later, previous=first)
    assert bumped.towers["text"].version == 2
    assert bumped.towers["text"].resolved_at == later
    assert bumped.towers["qa"] == first.towers["qa"]


def test_every_problem_of_an_environment_is_reported_at_once(client: Any) -> None:
    client.create_model_package_group(ModelPackageGroupName="g")
    client.create_model_package_group(ModelPackageGroupName="qa")
    with pytest.raises(RegistryError) as info:
        resolve_environment(_config(), client, now=lambda: NOW)
    lines = str(info.value).splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "towers.text.model_package (group 'g')",
        "towers.qa.model_package (group 'qa')",
    ]
