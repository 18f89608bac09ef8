"""Stateless stack of one tower: execution role, Model, EndpointConfig, Endpoint, log group."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from hf_towers.config.models import Tower, TowerKind
from hf_towers.constructs.artifact_store import ArtifactStore
from hf_towers.constructs.execution_role import ExecutionRole
from hf_towers.constructs.model_data import ExistingModelData, ModelData
from hf_towers.constructs.tower_endpoint import TowerEndpoint
from hf_towers.constructs.tower_model import TowerModel
from hf_towers.images import resolve_image

R = logs.RetentionDays
# CloudWatch Logs' allowed retention values (config validates days against the same set).
RETENTION: dict[int, logs.RetentionDays] = {
    1: R.ONE_DAY,
    3: R.THREE_DAYS,
    5: R.FIVE_DAYS,
    7: R.ONE_WEEK,
    14: R.TWO_WEEKS,
    30: R.ONE_MONTH,
    60: R.TWO_MONTHS,
    90: R.THREE_MONTHS,
    120: R.FOUR_MONTHS,
    150: R.FIVE_MONTHS,
    180: R.SIX_MONTHS,
    365: R.ONE_YEAR,
    400: R.THIRTEEN_MONTHS,
    545: R.EIGHTEEN_MONTHS,
    731: R.TWO_YEARS,
    1096: R.THREE_YEARS,
    1827: R.FIVE_YEARS,
    2192: R.SIX_YEARS,
    2557: R.SEVEN_YEARS,
    2922: R.EIGHT_YEARS,
    3288: R.NINE_YEARS,
    3653: R.TEN_YEARS,
}


class TowerStack(Stack):
    """One tower. With ``tower.deploy_endpoint`` false only the role and the Model exist."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        tower_name: str,
        tower: Tower,
        endpoint_name: str,
        store: ArtifactStore,
        region: str,
        removal_policy: RemovalPolicy,
        log_retention_days: int,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id_, **kwargs)
        self.tower_name = tower_name
        self.tower = tower
        image = resolve_image(tower, region)
        model_data = self._model_data(tower)

        self.log_group: logs.LogGroup | None = None
        if tower.deploy_endpoint:
            self.log_group = logs.LogGroup(
                self,
                "EndpointLogs",
                log_group_name=f"/aws/sagemaker/Endpoints/{endpoint_name}",
                retention=RETENTION[log_retention_days],
                encryption_key=store.key,
                removal_policy=removal_policy,
            )

        self.execution_role = ExecutionRole(
            self,
            "ExecutionRole",
            key=store.key,
            image=image,
            model_data_statements=model_data.read_statements(),
            log_group=self.log_group,
        )
        self.model = TowerModel(
            self,
            "Model",
            image_uri=image.uri,
            model_data=model_data,
            execution_role_arn=self.execution_role.role_arn,
            model_version=tower.model_version,
            environment=self._container_environment(tower),
        )
        # The role's policy must exist before SageMaker validates access to image and data.
        self.model.node.add_dependency(self.execution_role.policy)

        CfnOutput(
            self, "ModelName", value=self.model.model_name, description="SageMaker model name"
        )
        CfnOutput(
            self,
            "ExecutionRoleArn",
            value=self.execution_role.role_arn,
            description="Execution role ARN",
        )

        self.endpoint: TowerEndpoint | None = None
        if tower.deploy_endpoint:
            self.endpoint = TowerEndpoint(
                self,
                "Endpoint",
                model_name=self.model.model_name,
                endpoint_name=endpoint_name,
                instance_type=tower.instance_type,
                initial_instance_count=tower.initial_instance_count,
                key=store.key,
            )
            if self.log_group is not None:
                self.endpoint.node.add_dependency(self.log_group)
            CfnOutput(
                self,
                "EndpointName",
                value=self.endpoint.endpoint_name,
                description="SageMaker endpoint name",
            )
            CfnOutput(
                self,
                "EndpointArn",
                value=self.endpoint.endpoint_arn,
                description="SageMaker endpoint ARN",
            )

    def _model_data(self, tower: Tower) -> ModelData:
        """The artifact the Model reads. The repack custom resource replaces this seam."""
        return ExistingModelData(tower.model_uri)

    @staticmethod
    def _container_environment(tower: Tower) -> dict[str, str]:
        """Toolkit settings: SAGEMAKER_PROGRAM for code towers, HF_TASK for task models."""
        env = {"SAGEMAKER_CONTAINER_LOG_LEVEL": "20"}
        if tower.kind is TowerKind.TASK:
            env["HF_TASK"] = str(tower.hf_task)
        else:
            env["SAGEMAKER_PROGRAM"] = tower.entry_module
            env["TOWER"] = tower.kind.value
            if tower.main_module_name:
                env["MAIN_MODULE_NAME"] = tower.main_module_name
        return {**env, **tower.environment}

    def grant_invoke(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` invoke this tower's endpoint."""
        if self.endpoint is None:
            raise ValueError(
                f"tower {self.tower_name!r} has deploy_endpoint: false; there is no endpoint to invoke"
            )
        return self.endpoint.grant_invoke(grantee)
