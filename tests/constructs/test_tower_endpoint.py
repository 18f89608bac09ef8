"""``TowerEndpoint`` and ``EndpointRef`` on a bare stack."""

from __future__ import annotations

from aws_cdk import Stack

from hf_towers.constructs.tower_endpoint import EndpointRef, TowerEndpoint
from tests.constructs.bare import bare_stack, key, only


def test_endpoint_ref_builds_the_lower_case_arn_resource_id_and_metrics() -> None:
    stack = bare_stack()
    ref = EndpointRef("MyTextEndpoint")
    assert stack.resolve(ref.arn(stack)) == (
        "arn:aws:sagemaker:us-east-1:111122223333:endpoint/mytextendpoint"
    )
    assert ref.variant_resource_id == "endpoint/MyTextEndpoint/variant/AllTraffic"
    variant = ref.variant_metric("ModelLatency", "p99")
    assert variant.namespace == "AWS/SageMaker"
    assert variant.dimensions == {"EndpointName": "MyTextEndpoint", "VariantName": "AllTraffic"}
    assert ref.endpoint_metric("ApproximateBacklogSize", "Average").dimensions == {
        "EndpointName": "MyTextEndpoint"
    }


def _endpoint(stack: Stack, instance_type: str) -> TowerEndpoint:
    return TowerEndpoint(
        stack,
        "Endpoint",
        model_name="model-1",
        endpoint=EndpointRef("team-text"),
        instance_type=instance_type,
        initial_instance_count=2,
        key=key(stack),
    )


def test_volume_key_on_ebs_types_and_none_on_instance_store_types() -> None:
    stack = bare_stack()
    _endpoint(stack, "ml.m5.xlarge")
    config = only(stack, "AWS::SageMaker::EndpointConfig")["Properties"]
    assert "KmsKeyId" in config
    (variant,) = config["ProductionVariants"]
    assert (variant["InstanceType"], variant["InitialInstanceCount"]) == ("ml.m5.xlarge", 2)
    gpu = bare_stack()
    _endpoint(gpu, "ml.g5.xlarge")
    assert "KmsKeyId" not in only(gpu, "AWS::SageMaker::EndpointConfig")["Properties"]


def test_the_endpoint_is_named_and_refers_to_its_config() -> None:
    stack = bare_stack()
    endpoint = _endpoint(stack, "ml.m5.xlarge")
    properties = only(stack, "AWS::SageMaker::Endpoint")["Properties"]
    assert properties["EndpointName"] == "team-text"
    assert properties["EndpointConfigName"] == {
        "Fn::GetAtt": [stack.get_logical_id(endpoint.config), "EndpointConfigName"]
    }


def test_keep_instance_count_retains_the_fleet_size_but_not_the_weight() -> None:
    stack = bare_stack()
    TowerEndpoint(
        stack,
        "Endpoint",
        model_name="model-1",
        endpoint=EndpointRef("team-text"),
        instance_type="ml.m5.xlarge",
        initial_instance_count=2,
        key=key(stack),
        keep_instance_count=True,
    )
    properties = only(stack, "AWS::SageMaker::Endpoint")["Properties"]
    assert properties["RetainAllVariantProperties"] is True
    assert properties["ExcludeRetainedVariantProperties"] == [
        {"VariantPropertyType": "DesiredWeight"}
    ]
    # The type and count of the new config are still written (a first deploy uses them).
    (variant,) = only(stack, "AWS::SageMaker::EndpointConfig")["Properties"]["ProductionVariants"]
    assert (variant["InstanceType"], variant["InitialInstanceCount"]) == ("ml.m5.xlarge", 2)


def test_without_keep_instance_count_an_update_takes_the_new_config_as_it_is() -> None:
    stack = bare_stack()
    _endpoint(stack, "ml.m5.xlarge")
    properties = only(stack, "AWS::SageMaker::Endpoint")["Properties"]
    assert "RetainAllVariantProperties" not in properties
    assert "ExcludeRetainedVariantProperties" not in properties
