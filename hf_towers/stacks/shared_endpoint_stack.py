"""Stack ``<project>-<env>-shared-<name>``: one endpoint whose towers are inference components.

The member towers' stacks depend on it (a stack dependency, not a reference: they name the
endpoint from config), so updating one tower's model changes that tower's stack only.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, RemovalPolicy, Stack
from aws_cdk import aws_logs as logs
from constructs import Construct

from hf_towers.config.shared_endpoints import SharedEndpoint as SharedSettings
from hf_towers.constructs.shared_endpoint import SharedEndpoint
from hf_towers.constructs.tower_endpoint import EndpointRef
from hf_towers.stacks.artifacts_stack import ArtifactsStack


class SharedEndpointStack(Stack):
    """Places a ``SharedEndpoint`` under the id ``Default`` and adds its outputs."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        endpoint_name: str,
        settings: SharedSettings,
        artifacts: ArtifactsStack,
        removal_policy: RemovalPolicy,
        log_retention: logs.RetentionDays,
        network_isolation: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id_, **kwargs)
        self.endpoint = SharedEndpoint(
            self,
            "Default",
            endpoint=EndpointRef(endpoint_name),
            settings=settings,
            key=artifacts.store.key,
            removal_policy=removal_policy,
            log_retention=log_retention,
            network_isolation=network_isolation,
        )
        CfnOutput(
            self,
            "EndpointName",
            value=self.endpoint.endpoint_name,
            description="SageMaker endpoint name (invoke with an inference component name)",
        )
        CfnOutput(
            self,
            "EndpointArn",
            value=self.endpoint.endpoint_arn,
            description="SageMaker endpoint ARN",
        )
        CfnOutput(
            self,
            "ExecutionRoleArn",
            value=self.endpoint.execution_role.role_arn,
            description="Execution role of the endpoint config",
        )

    @property
    def role_arn(self) -> str:
        return self.endpoint.execution_role.role_arn
