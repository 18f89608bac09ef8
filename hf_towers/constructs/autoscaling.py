"""Application Auto Scaling of a tower's instance count (real-time and async endpoints).

Real-time: target tracking on ``SageMakerVariantInvocationsPerInstance``. Async: target tracking
on ``ApproximateBacklogSizePerInstance``; when the minimum is 0 the endpoint scales in to zero
instances and a step policy on ``HasBacklogWithoutCapacity`` adds the first instance back.
"""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from constructs import Construct

from hf_towers.config.operations import Autoscaling
from hf_towers.constructs.tower_endpoint import EndpointRef

SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
# The service-linked role Application Auto Scaling uses for SageMaker variants (created by AWS on
# first use): no role of ours, so no extra IAM to keep least privilege.
SERVICE_LINKED_ROLE = (
    "aws-service-role/sagemaker.application-autoscaling.amazonaws.com/"
    "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"
)


def sagemaker_scalable_target(
    scope: Construct,
    *,
    resource_id: str,
    scalable_dimension: str,
    min_capacity: int,
    max_capacity: int,
) -> appscaling.ScalableTarget:
    """ScalableTarget ``Resource`` of a SageMaker resource in ``scope``, scaled through the
    service-linked role (imported as ``ServiceLinkedRole``)."""
    role = iam.Role.from_role_arn(
        scope,
        "ServiceLinkedRole",
        Stack.of(scope).format_arn(
            service="iam", region="", resource="role", resource_name=SERVICE_LINKED_ROLE
        ),
        mutable=False,
    )
    return appscaling.ScalableTarget(
        scope,
        "Resource",
        service_namespace=appscaling.ServiceNamespace.SAGEMAKER,
        resource_id=resource_id,
        scalable_dimension=scalable_dimension,
        min_capacity=min_capacity,
        max_capacity=max_capacity,
        role=role,
    )


def scale_out_from_zero(
    scope: Construct,
    target: appscaling.ScalableTarget,
    *,
    aggregation: appscaling.MetricAggregationType,
    cooldown: Duration,
    alarm_id: str,
    alarm_description: str,
    metric: cloudwatch.IMetric,
    periods: int,
) -> tuple[appscaling.StepScalingAction, cloudwatch.Alarm]:
    """Step policy ``ScaleOutFromZero`` (+1 for any breach) and the alarm ``alarm_id`` that runs
    it when ``metric`` is at least 1 for ``periods`` periods: the way back from zero capacity,
    where target tracking has nothing to divide by."""
    step = appscaling.StepScalingAction(
        scope,
        "ScaleOutFromZero",
        scaling_target=target,
        adjustment_type=appscaling.AdjustmentType.CHANGE_IN_CAPACITY,
        metric_aggregation_type=aggregation,
        cooldown=cooldown,
    )
    step.add_adjustment(adjustment=1, lower_bound=0)
    alarm = cloudwatch.Alarm(
        scope,
        alarm_id,
        alarm_description=alarm_description,
        metric=metric,
        threshold=1,
        evaluation_periods=periods,
        datapoints_to_alarm=periods,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treat_missing_data=cloudwatch.TreatMissingData.MISSING,
    )
    alarm.add_alarm_action(actions.ApplicationScalingAction(step))
    return step, alarm


class VariantAutoscaling(Construct):
    """ScalableTarget ``endpoint/<name>/variant/AllTraffic`` and its scaling policies."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        endpoint: EndpointRef,
        settings: Autoscaling,
        min_capacity: int,
        max_capacity: int,
        asynchronous: bool,
    ) -> None:
        super().__init__(scope, id_)
        self.target = sagemaker_scalable_target(
            self,
            resource_id=endpoint.variant_resource_id,
            scalable_dimension=SCALABLE_DIMENSION,
            min_capacity=min_capacity,
            max_capacity=max_capacity,
        )
        scale_in = Duration.seconds(settings.scale_in_cooldown_seconds)
        scale_out = Duration.seconds(settings.scale_out_cooldown_seconds)
        self.step_out_from_zero: appscaling.StepScalingAction | None = None
        self.backlog_alarm: cloudwatch.Alarm | None = None
        if not asynchronous:
            self.target.scale_to_track_metric(
                "InvocationsPerInstance",
                target_value=settings.target_invocations_per_instance,
                predefined_metric=appscaling.PredefinedMetric.SAGEMAKER_VARIANT_INVOCATIONS_PER_INSTANCE,
                scale_in_cooldown=scale_in,
                scale_out_cooldown=scale_out,
            )
            return
        self.target.scale_to_track_metric(
            "BacklogPerInstance",
            target_value=settings.target_backlog_per_instance,
            custom_metric=endpoint.endpoint_metric("ApproximateBacklogSizePerInstance", "Average"),
            scale_in_cooldown=scale_in,
            scale_out_cooldown=scale_out,
        )
        if min_capacity == 0:
            self._scale_out_from_zero(endpoint, settings)

    def _scale_out_from_zero(self, endpoint: EndpointRef, settings: Autoscaling) -> None:
        """Backlog-per-instance is undefined at zero instances: a step policy adds one."""
        self.step_out_from_zero, self.backlog_alarm = scale_out_from_zero(
            self,
            self.target,
            aggregation=appscaling.MetricAggregationType.AVERAGE,
            cooldown=Duration.seconds(settings.scale_out_cooldown_seconds),
            alarm_id="HasBacklogWithoutCapacity",
            alarm_description=f"{endpoint.name}: requests queued while scaled to zero; adds an instance",
            metric=endpoint.endpoint_metric("HasBacklogWithoutCapacity", "Average"),
            periods=2,
        )
