"""A tower's ``EndpointConfig`` (generated name) and ``Endpoint`` (stable logical id)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from hf_towers.compliance import acknowledge
from hf_towers.config.operations import Serverless

VARIANT_NAME = "AllTraffic"
NAMESPACE = "AWS/SageMaker"
"""Invocation metrics of endpoints and variants."""
INSTANCE_NAMESPACE = "/aws/sagemaker/Endpoints"
"""Instance metrics of endpoint variants: CPU, memory, disk and GPU utilisation."""


def sagemaker_arn(scope: Construct, resource: str, name: str) -> str:
    """``arn:<partition>:sagemaker:<region>:<account>:<resource>/<name>`` of ``scope``'s stack,
    the name lower case: "Amazon SageMaker AI resource ARNs ... are lowercase" (IAM condition
    keys and ARNs page, docs.aws.amazon.com/sagemaker/latest/dg/api-permissions-reference.html)."""
    return Stack.of(scope).format_arn(
        service="sagemaker", resource=resource, resource_name=name.lower()
    )


def sagemaker_metric(
    namespace: str,
    metric_name: str,
    dimensions: dict[str, str],
    statistic: str,
    *,
    period: Duration | None = None,
    label: str | None = None,
) -> cloudwatch.Metric:
    """A SageMaker metric with ``dimensions``, over one minute unless ``period``."""
    return cloudwatch.Metric(
        namespace=namespace,
        metric_name=metric_name,
        dimensions_map=dimensions,
        statistic=statistic,
        period=period or Duration.minutes(1),
        label=label,
    )


@dataclass(frozen=True)
class EndpointRef:
    """What every construct around an endpoint derives from its name, built in one place: the
    ARN (lower case, as SageMaker writes endpoint names in ARNs: "Amazon SageMaker AI resource
    ARNs ... are lowercase", IAM condition keys and ARNs page,
    docs.aws.amazon.com/sagemaker/latest/dg/api-permissions-reference.html), the Application
    Auto Scaling resource id of its variant, and its CloudWatch metrics."""

    name: str

    def arn(self, scope: Construct) -> str:
        return sagemaker_arn(scope, "endpoint", self.name)

    @property
    def variant_resource_id(self) -> str:
        """``endpoint/<name>/variant/AllTraffic`` (Application Auto Scaling's resource id)."""
        return f"endpoint/{self.name}/variant/{VARIANT_NAME}"

    def variant_metric(
        self,
        metric_name: str,
        statistic: str,
        *,
        period: Duration | None = None,
        namespace: str = NAMESPACE,
        label: str | None = None,
    ) -> cloudwatch.Metric:
        """A metric of the ``AllTraffic`` variant (``AWS/SageMaker`` unless ``namespace``)."""
        return sagemaker_metric(
            namespace,
            metric_name,
            {"EndpointName": self.name, "VariantName": VARIANT_NAME},
            statistic,
            period=period,
            label=label,
        )

    def endpoint_metric(
        self,
        metric_name: str,
        statistic: str,
        *,
        period: Duration | None = None,
        label: str | None = None,
    ) -> cloudwatch.Metric:
        """A metric of the endpoint as a whole (the async backlog metrics)."""
        return sagemaker_metric(
            NAMESPACE,
            metric_name,
            {"EndpointName": self.name},
            statistic,
            period=period,
            label=label,
        )


# Nitro instance families with local NVMe instance storage: SageMaker encrypts those volumes
# in hardware and rejects a KmsKeyId on the EndpointConfig ("Instance Store Volumes" in the
# SageMaker docs). Families ending in "d"/"dn" (m5d, c6id, r5dn...) have it too.
_INSTANCE_STORE_FAMILIES = frozenset(
    {
        "g4dn",
        "g5",
        "g6",
        "g6e",
        "gr6",
        "p3dn",
        "p4d",
        "p4de",
        "p5",
        "p5e",
        "p5en",
        "p6",
        "trn1",
        "trn1n",
        "trn2",
    }
)


def supports_volume_kms(instance_type: str) -> bool:
    """False for instance types whose storage is local NVMe (KmsKeyId would be rejected)."""
    family = instance_type.split(".")[1]
    return not (family in _INSTANCE_STORE_FAMILIES or re.search(r"\dd$|d$|dn$", family))


def acknowledge_instance_storage(config: sagemaker.CfnEndpointConfig, instance_type: str) -> None:
    """Acknowledge the packs' KMS rule on ``config``, whose ``instance_type`` refuses a KmsKeyId
    (``supports_volume_kms`` is False)."""
    acknowledge(
        config,
        f"{instance_type} has local NVMe instance storage, encrypted by the instance's hardware "
        "module; SageMaker rejects a KmsKeyId for such instance types.",
        "HIPAA.Security-SageMakerEndpointConfigurationKMSKeyConfigured",
        "NIST.800.53.R5-SageMakerEndpointConfigurationKMSKeyConfigured",
        "PCI.DSS.321-SageMakerEndpointConfigurationKMSKeyConfigured",
    )


# The Endpoint's RetainAllVariantProperties and its exclusions (autoscaled instance variants).
# Without it an update (a new EndpointConfig: a model version, an image...) starts the variant
# with the new config's ``InitialInstanceCount``, dropping an autoscaled fleet to it. With
# RetainAllVariantProperties true, a variant of the same name keeps the DesiredInstanceCount that
# DescribeEndpoint reports, whatever InitialInstanceCount the new EndpointConfig holds ("Update
# endpoints that use auto scaling", step 6,
# docs.aws.amazon.com/sagemaker/latest/dg/endpoint-scaling-update.html). Properties
# listed in ExcludeRetainedVariantProperties come from the new config instead
# (docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/
# aws-properties-sagemaker-endpoint-variantproperty.html): DesiredWeight, so the one
# variant's weight is always the configured 1.0. The instance type is not a retained property:
# it always follows the config (changing it under autoscaling fails the update, same page).
# The count is retained even when initial_instance_count changes: under autoscaling that key
# only sizes the first fleet; autoscaling.min_capacity/max_capacity move the fleet.
_EXCLUDED_FROM_RETAIN = [
    sagemaker.CfnEndpoint.VariantPropertyProperty(variant_property_type="DesiredWeight")
]


class TowerEndpoint(Construct):
    """EndpointConfig (one variant ``AllTraffic``) + Endpoint named ``endpoint_name``.

    The volume is encrypted with ``key`` where the instance type allows it; on instance-store
    types the hardware encrypts it and the finding is acknowledged with that reason.
    ``serverless`` replaces instance type and count by a ``ServerlessConfig``; ``async_inference``,
    ``data_capture`` and ``deployment_config`` are passed through as built by their constructs.
    ``keep_instance_count`` (autoscaled instance variants): an update keeps the variant's current
    instance count instead of restarting from ``initial_instance_count``.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        model_name: str,
        endpoint: EndpointRef,
        instance_type: str,
        initial_instance_count: int,
        key: kms.IKey,
        serverless: Serverless | None = None,
        async_inference: sagemaker.CfnEndpointConfig.AsyncInferenceConfigProperty | None = None,
        data_capture: sagemaker.CfnEndpointConfig.DataCaptureConfigProperty | None = None,
        deployment_config: sagemaker.CfnEndpoint.DeploymentConfigProperty | None = None,
        keep_instance_count: bool = False,
    ) -> None:
        super().__init__(scope, id_)
        self.ref = endpoint
        # A serverless config takes KmsKeyId too: "SageMaker AI uses this key to encrypt your
        # Amazon ECR image" (docs.aws.amazon.com/sagemaker/latest/dg/
        # serverless-endpoints-create-config.html). Only instance-store types refuse one.
        volume_kms = serverless is not None or supports_volume_kms(instance_type)
        self.config = sagemaker.CfnEndpointConfig(
            self,
            "Config",
            production_variants=[
                _variant(model_name, instance_type, initial_instance_count, serverless)
            ],
            kms_key_id=key.key_arn if volume_kms else None,
            async_inference_config=async_inference,
            data_capture_config=data_capture,
        )
        if not volume_kms:
            acknowledge_instance_storage(self.config, instance_type)
        self.resource = sagemaker.CfnEndpoint(
            self,
            "Resource",
            endpoint_name=endpoint.name,
            endpoint_config_name=self.config.attr_endpoint_config_name,
            deployment_config=deployment_config,
            retain_all_variant_properties=True if keep_instance_count else None,
            exclude_retained_variant_properties=_EXCLUDED_FROM_RETAIN
            if keep_instance_count
            else None,
        )

    @property
    def endpoint_name(self) -> str:
        """The endpoint's name."""
        return self.resource.attr_endpoint_name

    @property
    def endpoint_arn(self) -> str:
        """The endpoint's ARN (``Ref`` of ``AWS::SageMaker::Endpoint``)."""
        return self.resource.ref

    def grant_invoke(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` invoke this endpoint (real-time, async and streaming), nothing else."""
        return iam.Grant.add_to_principal(
            grantee=grantee,
            actions=[
                "sagemaker:InvokeEndpoint",
                "sagemaker:InvokeEndpointAsync",
                "sagemaker:InvokeEndpointWithResponseStream",
            ],
            resource_arns=[self.endpoint_arn],
        )


def _variant(
    model_name: str, instance_type: str, initial_instance_count: int, serverless: Serverless | None
) -> sagemaker.CfnEndpointConfig.ProductionVariantProperty:
    """The one variant: instance type and count, or serverless memory and concurrency."""
    if serverless is None:
        return sagemaker.CfnEndpointConfig.ProductionVariantProperty(
            variant_name=VARIANT_NAME,
            model_name=model_name,
            initial_instance_count=initial_instance_count,
            instance_type=instance_type,
            initial_variant_weight=1.0,
        )
    return sagemaker.CfnEndpointConfig.ProductionVariantProperty(
        variant_name=VARIANT_NAME,
        model_name=model_name,
        initial_variant_weight=1.0,
        serverless_config=sagemaker.CfnEndpointConfig.ServerlessConfigProperty(
            memory_size_in_mb=serverless.memory_size_mb,
            max_concurrency=serverless.max_concurrency,
            provisioned_concurrency=serverless.provisioned_concurrency,
        ),
    )
