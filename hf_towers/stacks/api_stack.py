"""API stack of an environment (``<project>-<env>-api``, only when ``api.enabled``)."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, RemovalPolicy, Stack
from aws_cdk import aws_logs as logs
from constructs import Construct

from hf_towers.config.api import ApiAuth
from hf_towers.config.models import EnvironmentConfig
from hf_towers.constructs.tower_api import ApiRoute, TowerApi


def _pascal(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("-"))


class ApiStack(Stack):
    """A regional REST API in front of the environment's tower endpoints (README, 'API')."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        config: EnvironmentConfig,
        log_retention: logs.RetentionDays,
        removal_policy: RemovalPolicy,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id_, **kwargs)
        self.routes = [
            ApiRoute(
                tower=name,
                endpoint_name=config.endpoint_name(name),
                component_name=config.inference_component_name(name),
            )
            for name in config.api_towers
        ]
        self.api = TowerApi(
            self,
            "Api",
            api_name=config.api_stack_name,
            routes=self.routes,
            config=config.api,
            log_retention=log_retention,
            removal_policy=removal_policy,
        )
        rest_api = self.api.rest_api
        CfnOutput(self, "ApiId", value=rest_api.rest_api_id, description="REST API id")
        CfnOutput(self, "ApiUrl", value=rest_api.url, description="Invoke URL of the stage")
        for route in self.routes:
            CfnOutput(
                self,
                f"{_pascal(route.tower)}InvokeUrl",
                value=rest_api.url_for_path(f"/towers/{route.tower}/invocations"),
                description=f"POST here to invoke tower {route.tower}",
            )
        if config.api.auth is ApiAuth.API_KEY:
            for consumer, key in self.api.api_keys.items():
                CfnOutput(
                    self,
                    f"{_pascal(consumer)}ApiKeyId",
                    value=key.key_id,
                    description=f"aws apigateway get-api-key --include-value --api-key <id> ({consumer})",
                )
