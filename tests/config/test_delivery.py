"""Delivery config: the ``api:`` keys of an environment and ``config/pipeline.yaml``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from hf_towers.config import ConfigError, parse_config
from hf_towers.config.delivery import (
    DEFAULT_BINARY_MEDIA_TYPES,
    ApiAuth,
    PipelineConfigError,
    api_towers,
    load_pipeline_config,
    load_pipeline_environments,
    parse_pipeline_config,
)
from tests.synth_helpers import REPO, default_data

CONNECTION = (
    "arn:aws:codeconnections:us-east-1:999999999999:connection/0a1b2c3d-4e5f-6789-abcd-ef0123456789"
)


def _api_error(api: dict[str, Any], **towers: dict[str, Any]) -> str:
    data = default_data()
    data["api"] = api
    for name, changes in towers.items():
        data["towers"][name].update(changes)
    with pytest.raises(ConfigError) as info:
        parse_config(data, "config/bad.yaml")
    return str(info.value)


def test_api_is_off_by_default_with_iam_auth_and_image_pass_through() -> None:
    api = parse_config(default_data(), "test").api
    assert api.enabled is False
    assert api.auth is ApiAuth.IAM
    assert (api.stage_name, api.throttle.rate_limit, api.throttle.burst_limit) == ("v1", 50.0, 100)
    assert tuple(api.binary_media_types) == DEFAULT_BINARY_MEDIA_TYPES
    assert {"image/jpeg", "image/png", "image/webp"} <= set(api.binary_media_types)
    assert (api.quota, api.api_keys, api.waf_web_acl_arn, api.execution_log_level) == (
        None,
        [],
        None,
        "error",
    )


def test_api_exposes_towers_with_an_invokable_endpoint_in_config_order() -> None:
    data = default_data()
    data["api"] = {"enabled": True}
    data["towers"]["text"]["deploy_endpoint"] = False
    assert api_towers(parse_config(data, "test")) == ["vision", "qa"]
    data["api"]["towers"] = ["qa", "vision"]
    assert api_towers(parse_config(data, "test")) == ["vision", "qa"]


@pytest.mark.parametrize(
    ("api", "expected"),
    [
        (
            {"enabled": True, "auth": "cognito"},
            "api.auth = 'cognito': Input should be 'iam' or 'api_key'",
        ),
        (
            {"enabled": True, "auth": "api_key"},
            "auth api_key needs at least one consumer in api_keys, e.g. api_keys: [search-app]",
        ),
        (
            {"enabled": True, "api_keys": ["app"], "quota": {"limit": 5}},
            "api_keys and quota only apply to auth api_key: remove them or set auth: api_key",
        ),
        (
            {"enabled": True, "auth": "api_key", "api_keys": ["Search App"]},
            "api.api_keys.0 = 'Search App': must be lowercase letters, digits and hyphens",
        ),
        (
            {
                "enabled": True,
                "waf_web_acl_arn": "arn:aws:wafv2:us-east-1:123456789012:global/webacl/x/y",
            },
            "api.waf_web_acl_arn = 'arn:aws:wafv2:us-east-1:123456789012:global/webacl/x/y': must be a regional WAFv2 web ACL ARN",
        ),
        (
            {"enabled": True, "binary_media_types": ["jpeg"]},
            "api.binary_media_types.0 = 'jpeg': must be a media type such as image/jpeg",
        ),
        (
            {"enabled": True, "stage_name": "v-1"},
            "api.stage_name = 'v-1': must be letters, digits or underscores",
        ),
        (
            {"enabled": True, "throttle": {"rate_limit": 0}},
            "api.throttle.rate_limit = 0: Input should be greater than 0",
        ),
        (
            {"enabled": True, "throttle": {"burst_limit": 6000}},
            "api.throttle.burst_limit = 6000: Input should be less than or equal to 5000",
        ),
        (
            {
                "enabled": True,
                "auth": "api_key",
                "api_keys": ["a1"],
                "quota": {"limit": 5, "period": "year"},
            },
            "api.quota.period = 'year': Input should be 'day', 'week' or 'month'",
        ),
        ({"enabled": True, "execution_log_level": "debug"}, "api.execution_log_level = 'debug'"),
        ({"enabled": True, "cache": True}, "api.cache: unknown key: remove it"),
        (
            {"enabled": True, "towers": ["audio"]},
            "api.towers names ['audio'], not towers with a real-time or serverless endpoint "
            "(these are ['qa', 'text', 'vision']): list only those, or remove api.towers to expose all",
        ),
        (
            {"enabled": True, "towers": []},
            "api.towers is empty: list at least one tower or set api.enabled: false",
        ),
    ],
)
def test_bad_api_values_name_key_and_fix(api: dict[str, Any], expected: str) -> None:
    message = _api_error(api)
    assert "config/bad.yaml: " in message
    assert expected in message


def test_api_rejects_towers_without_an_endpoint() -> None:
    message = _api_error({"enabled": True, "towers": ["vision"]}, vision={"deploy_endpoint": False})
    assert "api.towers names ['vision']" in message


def test_committed_pipeline_config_and_its_environments_are_valid() -> None:
    pipeline = load_pipeline_config(REPO / "config" / "pipeline.yaml")
    environments = load_pipeline_environments(pipeline, REPO)
    assert [e.environment for e in environments] == ["dev", "staging", "prod"]
    assert len({e.account for e in environments} | {pipeline.tooling_account}) == 4
    assert [e.protected for e in environments] == [False, False, True]
    assert environments[-1].removal_policy.value == "retain"
    assert all(e.api.enabled for e in environments)


def _pipeline(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "tooling_account": "999999999999",
        "tooling_region": "us-east-1",
        "repository": "my-org/hf-towers",
        "connection_arn": CONNECTION,
        "environments": ["config/dev.yaml"],
    }
    data.update(changes)
    return data


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"tooling_account": 12345},
            "tooling_account = 12345: must be the 12-digit tooling account id",
        ),
        (
            {"tooling_region": "moon-1"},
            "tooling_region = 'moon-1': not an AWS region where CodePipeline runs",
        ),
        (
            {"tooling_region": "us-east-9"},
            "tooling_region = 'us-east-9': not an AWS region where CodePipeline runs (botocore's endpoint data): use one of us-east-1, us-east-2",
        ),
        (
            {"repository": "hf-towers"},
            "repository = 'hf-towers': must be owner/name of the repository",
        ),
        (
            {"connection_arn": "arn:aws:iam::999999999999:role/x"},
            "connection_arn = 'arn:aws:iam::999999999999:role/x': must be a CodeStar/CodeConnections connection ARN",
        ),
        ({"environments": []}, "environments = []: must list environment config files"),
        (
            {"environments": ["dev.json"]},
            "environments.0 = 'dev.json': must list environment config files",
        ),
        (
            {"environments": ["config/dev.yaml", "config/dev.yaml"]},
            "environments lists a file twice: list each environment once",
        ),
        ({"stages": []}, "test.yaml: stages: unknown key: remove it"),
        (
            {"tooling_account": None},
            "tooling_account = None: must be the 12-digit tooling account id",
        ),
    ],
)
def test_bad_pipeline_values_name_key_and_fix(changes: dict[str, Any], expected: str) -> None:
    with pytest.raises(PipelineConfigError) as info:
        parse_pipeline_config(_pipeline(**changes), "test.yaml")
    assert expected in str(info.value)


def test_missing_pipeline_key_and_file() -> None:
    data = _pipeline()
    del data["connection_arn"]
    with pytest.raises(
        PipelineConfigError, match=re.escape("test.yaml: connection_arn: required key is missing")
    ):
        parse_pipeline_config(data, "test.yaml")
    with pytest.raises(PipelineConfigError, match="no such pipeline config"):
        load_pipeline_config(Path("config/none.yaml"))
    with pytest.raises(PipelineConfigError, match="config: is a folder, not a pipeline config"):
        load_pipeline_config(Path("config"))


def test_pipeline_environments_need_accounts_one_project_and_distinct_names(tmp_path: Path) -> None:
    def write(name: str, **changes: Any) -> str:
        data = default_data()
        data.update(changes)
        (tmp_path / name).write_text(yaml.safe_dump(data))
        return name

    files = [
        write("a.yaml"),  # account null (the built-in default)
        write("b.yaml", account="111111111111", project="other"),
        write("c.yaml", account="222222222222"),
        write("d.yaml", account="333333333333", region="mars"),
    ]
    pipeline = parse_pipeline_config(_pipeline(environments=files), "test.yaml")
    with pytest.raises(PipelineConfigError) as info:
        load_pipeline_environments(pipeline, tmp_path)
    message = str(info.value)
    assert (
        "a.yaml: account = None: a pipeline stage deploys into a fixed account: set account"
        in message
    )
    assert "b.yaml: project = 'other': the pipeline deploys project 'hf-towers'" in message
    assert (
        "c.yaml: environment = 'dev': another file of the pipeline has the same environment name"
        in message
    )
    assert "region = 'mars': not an AWS region where SageMaker runs" in message
