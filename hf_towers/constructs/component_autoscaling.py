"""Application Auto Scaling of an inference component's copy count, to and from zero.

Target tracking on ``SageMakerInferenceComponentInvocationsPerCopy``. With a minimum of 0 copies,
target tracking cannot bring the first copy back (there is no copy to divide by), so AWS's
documented path is added: a step scaling policy (+1 copy) driven by an alarm on
``NoCapacityInvocationFailures``, which SageMaker emits when a request reaches the component
while it has no copy ("Scale an endpoint to zero instances",
docs.aws.amazon.com/sagemaker/latest/dg/endpoint-auto-scaling-zero-instances.html).
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct

from hf_towers.config.shared_endpoints import Copies
from hf_towers.constructs.autoscaling import sagemaker_scalable_target, scale_out_from_zero
from hf_towers.constructs.inference_component import ComponentRef

SCALABLE_DIMENSION = "sagemaker:inference-component:DesiredCopyCount"
SCALE_IN_COOLDOWN = Duration.minutes(5)
SCALE_OUT_COOLDOWN = Duration.minutes(1)


class ComponentAutoscaling(Construct):
    """ScalableTarget ``inference-component/<name>``, its target tracking policy and, when
    ``copies.min`` is 0, the scale-out-from-zero step policy and its alarm."""

    def __init__(
        self, scope: Construct, id_: str, *, component: ComponentRef, copies: Copies
    ) -> None:
        super().__init__(scope, id_)
        self.target = sagemaker_scalable_target(
            self,
            resource_id=component.resource_id,
            scalable_dimension=SCALABLE_DIMENSION,
            min_capacity=copies.min,
            max_capacity=copies.max,
        )
        self.target.scale_to_track_metric(
            "InvocationsPerCopy",
            target_value=copies.invocations_per_copy,
            predefined_metric=appscaling.PredefinedMetric.SAGEMAKER_INFERENCE_COMPONENT_INVOCATIONS_PER_COPY,
            scale_in_cooldown=SCALE_IN_COOLDOWN,
            scale_out_cooldown=SCALE_OUT_COOLDOWN,
        )
        self.step_out_from_zero: appscaling.StepScalingAction | None = None
        self.no_capacity_alarm: cloudwatch.Alarm | None = None
        if copies.min == 0:
            self._scale_out_from_zero(component)

    def _scale_out_from_zero(self, component: ComponentRef) -> None:
        # The page's policy: ChangeInCapacity +1 for any breach, aggregated by Maximum. Its
        # alarm example uses GreaterThanThreshold 1 (two failed requests in a minute); here one
        # failed request is enough to start the copy (>= 1), since every request fails until
        # a copy is up anyway.
        self.step_out_from_zero, self.no_capacity_alarm = scale_out_from_zero(
            self,
            self.target,
            aggregation=appscaling.MetricAggregationType.MAXIMUM,
            cooldown=SCALE_OUT_COOLDOWN,
            alarm_id="NoCapacityInvocationFailures",
            alarm_description=f"{component.name}: a request found no copy (scaled to zero); adds one",
            metric=component.variant_metric(
                "NoCapacityInvocationFailures", "Sum", period=Duration.minutes(1)
            ),
            periods=1,
        )
