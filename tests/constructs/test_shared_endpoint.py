"""``SharedEndpoint`` on a bare stack (hf_towers/constructs/shared_endpoint.py)."""

from __future__ import annotations

from typing import Any

from aws_cdk import RemovalPolicy
from aws_cdk import aws_logs as logs

from hf_towers.config.shared_endpoints import SharedEndpoint as SharedSettings
from hf_towers.constructs.shared_endpoint import SharedEndpoint
from hf_towers.constructs.tower_endpoint import EndpointRef
from tests.constructs.bare import bare_stack, key, only


def _config(instance_type: str, *, network_isolation: bool) -> dict[str, Any]:
    stack = bare_stack()
    SharedEndpoint(
        stack,
        "Shared",
        endpoint=EndpointRef("team-shared"),
        settings=SharedSettings.model_validate(
            {"towers": ["text"], "instance_type": instance_type}
        ),
        key=key(stack),
        removal_policy=RemovalPolicy.RETAIN,
        log_retention=logs.RetentionDays.ONE_MONTH,
        network_isolation=network_isolation,
    )
    return dict(only(stack, "AWS::SageMaker::EndpointConfig")["Properties"])


def test_a_cpu_type_gets_the_volume_key_and_isolation_only_when_every_member_has_it() -> None:
    isolated = _config("ml.m5.xlarge", network_isolation=True)
    assert isolated["EnableNetworkIsolation"] is True
    assert "Fn::GetAtt" in isolated["KmsKeyId"]  # the environment key on the volume
    open_config = _config("ml.m5.xlarge", network_isolation=False)
    assert "EnableNetworkIsolation" not in open_config


def test_an_instance_store_type_gets_no_volume_key() -> None:
    config = _config("ml.g5.xlarge", network_isolation=False)
    assert "KmsKeyId" not in config
    (variant,) = config["ProductionVariants"]
    assert "ModelName" not in variant
