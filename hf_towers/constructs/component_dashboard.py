"""A member tower's dashboard: its component's traffic, latency, errors, copies, utilisation."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct

from hf_towers.constructs.inference_component import COMPONENT_NAMESPACE, ComponentRef


class ComponentDashboard(Construct):
    """One dashboard per member tower: rows of its inference component only (the shared
    endpoint's instances have their own dashboard in the shared stack)."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        component: ComponentRef,
        accelerated: bool,
        alarms: Sequence[cloudwatch.IAlarm] = (),
    ) -> None:
        super().__init__(scope, id_)

        def metric(name: str, statistic: str, namespace: str | None = None) -> cloudwatch.Metric:
            label = f"{name} {statistic}"
            if namespace is None:
                return component.variant_metric(name, statistic, label=label)
            return component.variant_metric(name, statistic, namespace=namespace, label=label)

        utilisation = ["CPUUtilizationNormalized", "MemoryUtilizationNormalized"]
        if accelerated:
            utilisation += ["GPUUtilizationNormalized", "GPUMemoryUtilizationNormalized"]
        rows: list[list[cloudwatch.IWidget]] = [
            [
                cloudwatch.GraphWidget(
                    title=f"{component.name}: invocations and errors",
                    left=[
                        metric("Invocations", "Sum"),
                        metric("Invocation4XXErrors", "Sum"),
                        metric("Invocation5XXErrors", "Sum"),
                        metric("NoCapacityInvocationFailures", "Sum"),
                    ],
                    width=12,
                ),
                cloudwatch.GraphWidget(
                    title=f"{component.name}: latency (microseconds)",
                    left=[
                        metric("ModelLatency", "p50"),
                        metric("ModelLatency", "p99"),
                        metric("OverheadLatency", "p99"),
                    ],
                    width=12,
                ),
            ],
            [
                cloudwatch.GraphWidget(
                    title=f"{component.name}: utilisation of its reservation (%)",
                    left=[metric(name, "Average", COMPONENT_NAMESPACE) for name in utilisation],
                    width=24,
                )
            ],
        ]
        if alarms:
            rows.append(
                [cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(alarms), width=24)]
            )
        self.dashboard = cloudwatch.Dashboard(self, "Resource", widgets=rows)
