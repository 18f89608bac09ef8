"""Stateless stack of one tower: a ``Tower`` construct and its outputs."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, RemovalPolicy, Stack
from aws_cdk import aws_logs as logs
from constructs import Construct

from hf_towers.config.models import Tower as TowerSettings
from hf_towers.constructs.serving_image import ServingImage
from hf_towers.constructs.tower import ArtifactsRef, ComponentPlacement, Tower
from hf_towers.images import ImageRef, ImageResolutionError, resolve_image
from hf_towers.stacks.artifacts_stack import ArtifactsStack

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
    """One tower's stack: resolves the image and the artifact bucket reference, places the
    ``Tower`` under the id ``Default`` (left out of logical ids, so each resource keeps the id it
    has at the top of a stack) and adds the outputs."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        tower_name: str,
        tower: TowerSettings,
        endpoint_name: str,
        artifacts: ArtifactsStack,
        region: str,
        removal_policy: RemovalPolicy,
        log_retention_days: int,
        placement: ComponentPlacement | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id_, **kwargs)
        image = self._image(tower_name, tower, region)
        self.tower = Tower(
            self,
            "Default",
            name=tower_name,
            settings=tower,
            endpoint_name=endpoint_name,
            image=image,
            artifacts=ArtifactsRef(
                key=artifacts.store.key,
                import_bucket_arn=artifacts.import_bucket_arn,
            ),
            region=region,
            removal_policy=removal_policy,
            log_retention=RETENTION[log_retention_days],
            placement=placement,
        )
        CfnOutput(
            self, "ModelName", value=self.tower.model.model_name, description="SageMaker model name"
        )
        CfnOutput(
            self,
            "ExecutionRoleArn",
            value=self.tower.execution_role.role_arn,
            description="Execution role ARN",
        )
        if self.tower.alarm_topic is not None:
            CfnOutput(
                self,
                "AlarmTopicArn",
                value=self.tower.alarm_topic.topic_arn,
                description="SNS topic of the endpoint's alarms (subscribe to it)",
            )
        if self.tower.component is not None:
            assert placement is not None
            # EndpointName too, so the pipeline's smoke test reads every tower the same way.
            CfnOutput(
                self,
                "EndpointName",
                value=placement.endpoint_name,
                description="The shared SageMaker endpoint that hosts this tower",
            )
            CfnOutput(
                self,
                "InferenceComponentName",
                value=self.tower.component.component_name,
                description="Inference component name (X-Amzn-SageMaker-Inference-Component)",
            )
            CfnOutput(
                self,
                "InferenceComponentArn",
                value=self.tower.component.component_arn,
                description="Inference component ARN",
            )
        if self.tower.endpoint is not None:
            CfnOutput(
                self,
                "EndpointName",
                value=self.tower.endpoint.endpoint_name,
                description="SageMaker endpoint name",
            )
            CfnOutput(
                self,
                "EndpointArn",
                value=self.tower.endpoint.endpoint_arn,
                description="SageMaker endpoint ARN",
            )

    def _image(self, tower_name: str, tower: TowerSettings, region: str) -> ImageRef:
        """The Model's image: resolved offline, or (``image: build``) the serving image as a
        Docker image asset of this stack, built by ``cdk deploy`` (synth only fingerprints its
        context) and pushed to the bootstrap's assets repository, which the execution role may
        pull from and nothing else."""
        if tower.image == "build":
            serving = ServingImage(self, "ServingImage")
            return ImageRef(
                uri=serving.image_uri, repository_arn=serving.asset.repository.repository_arn
            )
        try:
            return resolve_image(tower, region)
        except ImageResolutionError as exc:
            raise ImageResolutionError(f"towers.{tower_name}: {exc}") from None
