"""A tower's ``AWS::SageMaker::InferenceComponent`` on a shared endpoint, and ``ComponentRef``:
the one builder of a component's ARN, autoscaling resource id and metrics."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from hf_towers.config.shared_endpoints import Compute
from hf_towers.constructs.tower_endpoint import (
    NAMESPACE,
    VARIANT_NAME,
    EndpointRef,
    sagemaker_arn,
    sagemaker_metric,
)

COMPONENT_NAMESPACE = "/aws/sagemaker/InferenceComponents"
"""Utilisation metrics of inference components (CPU/GPU/memory, normalised to the reservation)."""


@dataclass(frozen=True)
class ComponentRef:
    """An inference component by name, on the endpoint ``endpoint_name``.

    Invocation metrics are in ``AWS/SageMaker`` with the ``InferenceComponentName`` dimension;
    ``variant_metric`` has the name and signature of ``EndpointRef``'s, so alarms and
    dashboards take either."""

    name: str
    endpoint_name: str

    @property
    def endpoint(self) -> EndpointRef:
        return EndpointRef(self.endpoint_name)

    def arn(self, scope: Construct) -> str:
        """``arn:...:inference-component/<name>`` (lower case, as SageMaker writes ARNs)."""
        return sagemaker_arn(scope, "inference-component", self.name)

    @property
    def resource_id(self) -> str:
        """``inference-component/<name>`` (Application Auto Scaling's resource id)."""
        return f"inference-component/{self.name}"

    def variant_metric(
        self,
        metric_name: str,
        statistic: str,
        *,
        period: Duration | None = None,
        namespace: str = NAMESPACE,
        label: str | None = None,
    ) -> cloudwatch.Metric:
        """A metric of this component (``AWS/SageMaker`` unless ``namespace``)."""
        return sagemaker_metric(
            namespace,
            metric_name,
            {"InferenceComponentName": self.name},
            statistic,
            period=period,
            label=label,
        )


class TowerComponent(Construct):
    """The component: the tower's Model with a compute reservation per copy, ``copy_count``
    copies, on variant ``AllTraffic`` of the shared endpoint (named from config, so the tower's
    stack holds no reference to the shared stack and a change here touches only this stack)."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        ref: ComponentRef,
        model_name: str,
        compute: Compute,
        copy_count: int,
        deployment_config: sagemaker.CfnInferenceComponent.InferenceComponentDeploymentConfigProperty,
    ) -> None:
        super().__init__(scope, id_)
        self.ref = ref
        self.resource = sagemaker.CfnInferenceComponent(
            self,
            "Resource",
            inference_component_name=ref.name,
            endpoint_name=ref.endpoint_name,
            variant_name=VARIANT_NAME,
            specification=sagemaker.CfnInferenceComponent.InferenceComponentSpecificationProperty(
                model_name=model_name,
                compute_resource_requirements=sagemaker.CfnInferenceComponent.InferenceComponentComputeResourceRequirementsProperty(
                    number_of_accelerator_devices_required=compute.accelerators,
                    number_of_cpu_cores_required=compute.cpu_cores,
                    min_memory_required_in_mb=compute.min_memory_mib,
                ),
            ),
            runtime_config=sagemaker.CfnInferenceComponent.InferenceComponentRuntimeConfigProperty(
                copy_count=copy_count
            ),
            deployment_config=deployment_config,
        )

    @property
    def component_name(self) -> str:
        """The component's name (from config; the resource has no name attribute)."""
        return self.ref.name

    @property
    def component_arn(self) -> str:
        """The component's ARN (``Ref`` of ``AWS::SageMaker::InferenceComponent``)."""
        return self.resource.ref

    def grant_invoke(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` invoke this component (real-time and streaming), nothing else.

        ``InvokeEndpoint`` and ``InvokeEndpointWithResponseStream`` authorize the endpoint
        (required) and the ``inference-component`` (Service Authorization Reference,
        docs.aws.amazon.com/service-authorization/latest/reference/list_amazonsagemaker.html);
        ``InvokeEndpointAsync`` takes no component, so it is not granted."""
        return iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["sagemaker:InvokeEndpoint", "sagemaker:InvokeEndpointWithResponseStream"],
            resource_arns=[self.ref.endpoint.arn(self), self.ref.arn(self)],
        )
