"""``api:`` of an environment file (hf_towers/config/api.py)."""

from __future__ import annotations

from typing import Any

import pytest

from hf_towers.config import ConfigError, parse_config
from hf_towers.config.api import DEFAULT_BINARY_MEDIA_TYPES, ApiAuth
from tests.synth_helpers import default_data


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
    assert parse_config(data, "test").api_towers == ["vision", "qa"]
    data["api"]["towers"] = ["qa", "vision"]
    assert parse_config(data, "test").api_towers == ["vision", "qa"]


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
