"""CloudWatch alarms on a tower's endpoint: 5XX errors and ModelLatency p99.

They notify the alarm topic and are the alarms a blue/green or rolling update watches to roll
back (``rollout.auto_rollback``).
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_sns as sns
from constructs import Construct

from hf_towers.config.operations import Monitoring
from hf_towers.constructs.inference_component import ComponentRef
from hf_towers.constructs.tower_endpoint import EndpointRef


class EndpointAlarms(Construct):
    """Two alarms (``Errors5xx``, ``LatencyP99``) with alarm and OK actions on ``topic``; on
    an endpoint's variant, or (``ComponentRef``) on one inference component."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        endpoint: EndpointRef | ComponentRef,
        settings: Monitoring,
        topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, id_)
        endpoint_name = endpoint.name
        period = Duration.seconds(settings.period_seconds)
        self.errors_5xx = cloudwatch.Alarm(
            self,
            "Errors5xx",
            alarm_description=f"{endpoint_name}: {settings.error_5xx_threshold}+ Invocation5XXErrors "
            f"per {settings.period_seconds} s in {settings.evaluation_periods} period(s)",
            metric=endpoint.variant_metric("Invocation5XXErrors", "Sum", period=period),
            threshold=settings.error_5xx_threshold,
            evaluation_periods=settings.evaluation_periods,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.latency_p99 = cloudwatch.Alarm(
            self,
            "LatencyP99",
            alarm_description=f"{endpoint_name}: ModelLatency p99 above {settings.latency_p99_ms} ms "
            f"in {settings.evaluation_periods} period(s)",
            # ModelLatency is in microseconds.
            metric=endpoint.variant_metric("ModelLatency", "p99", period=period),
            threshold=settings.latency_p99_ms * 1000,
            evaluation_periods=settings.evaluation_periods,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        for alarm in self.alarms:
            alarm.add_alarm_action(actions.SnsAction(topic))
            alarm.add_ok_action(actions.SnsAction(topic))

    @property
    def alarms(self) -> list[cloudwatch.Alarm]:
        return [self.errors_5xx, self.latency_p99]

    @property
    def alarm_names(self) -> list[str]:
        """Generated alarm names, for the Endpoint's ``AutoRollbackConfiguration``."""
        return [alarm.alarm_name for alarm in self.alarms]
