"""A tower's CloudWatch dashboard: traffic, latency, errors, utilisation, async backlog, alarms."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct

from hf_towers.config.operations import InferenceMode, is_accelerated
from hf_towers.constructs.tower_endpoint import INSTANCE_NAMESPACE, NAMESPACE, EndpointRef


class EndpointDashboard(Construct):
    """One dashboard per tower; instance utilisation for instance-based endpoints (GPU rows on
    accelerated types), backlog for async endpoints, and the tower's alarms."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        endpoint: EndpointRef,
        mode: InferenceMode,
        instance_type: str,
        alarms: Sequence[cloudwatch.IAlarm] = (),
    ) -> None:
        super().__init__(scope, id_)

        def metric(
            name: str,
            statistic: str,
            *,
            namespace: str = NAMESPACE,
            whole_endpoint: bool = False,
        ) -> cloudwatch.Metric:
            label = f"{name} {statistic}"
            if whole_endpoint:
                return endpoint.endpoint_metric(name, statistic, label=label)
            return endpoint.variant_metric(name, statistic, namespace=namespace, label=label)

        rows: list[list[cloudwatch.IWidget]] = [
            [
                cloudwatch.GraphWidget(
                    title="Invocations and errors",
                    left=[
                        metric("Invocations", "Sum"),
                        metric("Invocation4XXErrors", "Sum"),
                        metric("Invocation5XXErrors", "Sum"),
                    ],
                    width=12,
                ),
                cloudwatch.GraphWidget(
                    title="Latency (microseconds)",
                    left=[
                        metric("ModelLatency", "p50"),
                        metric("ModelLatency", "p90"),
                        metric("ModelLatency", "p99"),
                        metric("OverheadLatency", "p99"),
                    ],
                    width=12,
                ),
            ]
        ]
        if mode is not InferenceMode.SERVERLESS:
            utilisation = ["CPUUtilization", "MemoryUtilization", "DiskUtilization"]
            if is_accelerated(instance_type):
                utilisation += ["GPUUtilization", "GPUMemoryUtilization"]
            rows.append(
                [
                    cloudwatch.GraphWidget(
                        title="Instance utilisation (%)",
                        left=[
                            metric(name, "Average", namespace=INSTANCE_NAMESPACE)
                            for name in utilisation
                        ],
                        width=24,
                    )
                ]
            )
        if mode is InferenceMode.ASYNC:
            rows.append(
                [
                    cloudwatch.GraphWidget(
                        title="Async backlog",
                        left=[
                            metric("ApproximateBacklogSize", "Average", whole_endpoint=True),
                            metric(
                                "ApproximateBacklogSizePerInstance",
                                "Average",
                                whole_endpoint=True,
                            ),
                        ],
                        right=[metric("HasBacklogWithoutCapacity", "Maximum", whole_endpoint=True)],
                        width=24,
                    )
                ]
            )
        if alarms:
            rows.append(
                [cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(alarms), width=24)]
            )
        self.dashboard = cloudwatch.Dashboard(self, "Resource", widgets=rows)
