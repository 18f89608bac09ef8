"""An endpoint that hosts towers as inference components: EndpointConfig in inference-component
form, the Endpoint, its execution role, log group and instance dashboard.

Inference-component form ("Deploy models for real-time inference", inference components,
docs.aws.amazon.com/sagemaker/latest/dg/realtime-endpoints-deploy-models.html; CreateEndpointConfig,
docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateEndpointConfig.html): the variant
names no model (each component brings its own), the config carries ``ExecutionRoleArn``, and
the variant has ``ManagedInstanceScaling`` (minimum 0 lets the endpoint scale to zero instances)
and a ``RoutingConfig``.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from hf_towers.compliance import acknowledge
from hf_towers.config.operations import is_accelerated
from hf_towers.config.shared_endpoints import SharedEndpoint as SharedSettings
from hf_towers.constructs.execution_role import (
    put_sagemaker_metrics_statement,
    sagemaker_principal,
    write_endpoint_logs_statement,
)
from hf_towers.constructs.log_encryption import log_group_removal
from hf_towers.constructs.tower_endpoint import (
    INSTANCE_NAMESPACE,
    VARIANT_NAME,
    EndpointRef,
    acknowledge_instance_storage,
    supports_volume_kms,
)


class SharedEndpointRole(Construct):
    """The role on the EndpointConfig (``ExecutionRoleArn``), trusted by SageMaker for this account.

    AWS documents this role only as one "SageMaker AI can assume to perform actions on your
    behalf" (API_CreateEndpointConfig.html). The components do not need it for their image or
    artifact: each component's Model keeps its own execution role for those. So it gets what the
    endpoint itself writes: its log group and SageMaker's metric namespaces, nothing else.
    """

    def __init__(self, scope: Construct, id_: str, *, log_group: logs.ILogGroup) -> None:
        super().__init__(scope, id_)
        stack = Stack.of(self)
        self.role = iam.Role(
            self,
            "Resource",
            description=f"SageMaker execution role of the shared endpoint of {stack.stack_name}",
            assumed_by=sagemaker_principal(stack),
        )
        self.policy = iam.ManagedPolicy(
            self,
            "Policy",
            description=f"Least-privilege permissions of the shared endpoint role of {stack.stack_name}",
            roles=[self.role],
            statements=[
                write_endpoint_logs_statement(log_group),
                put_sagemaker_metrics_statement("PutSageMakerMetrics"),
            ],
        )
        acknowledge(
            self.policy,
            "Resource '*' only for cloudwatch:PutMetricData, which has no resource-level "
            "permissions; the SageMaker namespace condition bounds it.",
            "AwsSolutions-IAM5[Resource::*]",
        )

    @property
    def role_arn(self) -> str:
        return self.role.role_arn


class SharedEndpoint(Construct):
    """EndpointConfig (one variant ``AllTraffic``, no model) + Endpoint named ``endpoint.name``;
    ``network_isolation``: the config's ``EnableNetworkIsolation`` (every member is isolated)."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        endpoint: EndpointRef,
        settings: SharedSettings,
        key: kms.IKey,
        removal_policy: RemovalPolicy,
        log_retention: logs.RetentionDays,
        network_isolation: bool = False,
        dashboard: bool = True,
    ) -> None:
        super().__init__(scope, id_)
        self.ref = endpoint
        self.settings = settings
        self.log_group = logs.LogGroup(
            self,
            "EndpointLogs",
            log_group_name=f"/aws/sagemaker/Endpoints/{endpoint.name}",
            retention=log_retention,
            encryption_key=key,
            removal_policy=log_group_removal(removal_policy),
        )
        self.execution_role = SharedEndpointRole(self, "ExecutionRole", log_group=self.log_group)
        scaling = settings.managed_instance_scaling
        volume_kms = supports_volume_kms(settings.instance_type)
        self.config = sagemaker.CfnEndpointConfig(
            self,
            "Config",
            execution_role_arn=self.execution_role.role_arn,
            production_variants=[
                sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                    variant_name=VARIANT_NAME,
                    instance_type=settings.instance_type,
                    initial_instance_count=settings.initial_instance_count,
                    managed_instance_scaling=sagemaker.CfnEndpointConfig.ManagedInstanceScalingProperty(
                        status="ENABLED",
                        min_instance_count=scaling.min_instance_count,
                        max_instance_count=scaling.max_instance_count,
                    ),
                    routing_config=sagemaker.CfnEndpointConfig.RoutingConfigProperty(
                        routing_strategy=settings.routing.value.upper()
                    ),
                )
            ],
            kms_key_id=key.key_arn if volume_kms else None,
            # "Sets whether all model containers deployed to the endpoint are isolated"; only
            # for endpoints that host inference components (API_CreateEndpointConfig,
            # EnableNetworkIsolation). On when every member tower's Model is isolated; omitted
            # otherwise, so the config keeps its shape.
            enable_network_isolation=True if network_isolation else None,
        )
        # SageMaker validates the role when it creates the endpoint.
        self.config.node.add_dependency(self.execution_role.policy)
        if not volume_kms:
            acknowledge_instance_storage(self.config, settings.instance_type)
        self.resource = sagemaker.CfnEndpoint(
            self,
            "Resource",
            endpoint_name=endpoint.name,
            endpoint_config_name=self.config.attr_endpoint_config_name,
        )
        self.resource.node.add_dependency(self.log_group)
        self.dashboard: cloudwatch.Dashboard | None = None
        if dashboard:
            self.dashboard = self._dashboard()

    def _dashboard(self) -> cloudwatch.Dashboard:
        """The instances of the variant (the components have their own rows in their stacks)."""
        utilisation = ["CPUUtilization", "MemoryUtilization", "DiskUtilization"]
        if is_accelerated(self.settings.instance_type):
            utilisation += ["GPUUtilization", "GPUMemoryUtilization"]
        return cloudwatch.Dashboard(
            self,
            "Dashboard",
            widgets=[
                [
                    cloudwatch.GraphWidget(
                        title=f"{self.ref.name}: invocations of all components",
                        left=[
                            self.ref.variant_metric("Invocations", "Sum", label="Invocations Sum"),
                            self.ref.variant_metric(
                                "Invocation5XXErrors", "Sum", label="Invocation5XXErrors Sum"
                            ),
                        ],
                        width=24,
                    )
                ],
                [
                    cloudwatch.GraphWidget(
                        title=f"{self.ref.name}: instance utilisation (%)",
                        left=[
                            self.ref.variant_metric(
                                name, "Average", namespace=INSTANCE_NAMESPACE, label=name
                            )
                            for name in utilisation
                        ],
                        width=24,
                    )
                ],
            ],
        )

    @property
    def endpoint_name(self) -> str:
        return self.resource.attr_endpoint_name

    @property
    def endpoint_arn(self) -> str:
        return self.resource.ref
