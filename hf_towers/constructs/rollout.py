"""The Endpoint's ``DeploymentConfig`` from a tower's ``rollout`` settings."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import aws_sagemaker as sagemaker

from hf_towers.config.operations import Rollout, RolloutStrategy, TrafficShift

Cfn = sagemaker.CfnEndpoint


def _percent(value: int) -> Cfn.CapacitySizeProperty:
    return Cfn.CapacitySizeProperty(type="CAPACITY_PERCENT", value=value)


def deployment_config(
    rollout: Rollout, *, rollback_alarm_names: Sequence[str]
) -> Cfn.DeploymentConfigProperty:
    """Blue/green (all at once, canary or linear traffic shifting) or rolling batches, with
    automatic rollback on ``rollback_alarm_names`` (empty: no automatic rollback)."""
    rollback = (
        Cfn.AutoRollbackConfigProperty(
            alarms=[Cfn.AlarmProperty(alarm_name=name) for name in rollback_alarm_names]
        )
        if rollback_alarm_names
        else None
    )
    if rollout.strategy is RolloutStrategy.ROLLING:
        return Cfn.DeploymentConfigProperty(
            auto_rollback_configuration=rollback,
            rolling_update_policy=Cfn.RollingUpdatePolicyProperty(
                maximum_batch_size=_percent(rollout.rolling_batch_percent),
                wait_interval_in_seconds=rollout.wait_interval_seconds,
                maximum_execution_timeout_in_seconds=rollout.max_execution_timeout_seconds,
                rollback_maximum_batch_size=_percent(rollout.rollback_batch_percent)
                if rollout.rollback_batch_percent is not None
                else None,
            ),
        )
    routing = Cfn.TrafficRoutingConfigProperty(
        type=rollout.traffic.value.upper(),
        wait_interval_in_seconds=rollout.wait_interval_seconds,
        canary_size=_percent(rollout.canary_percent)
        if rollout.traffic is TrafficShift.CANARY
        else None,
        linear_step_size=_percent(rollout.linear_step_percent)
        if rollout.traffic is TrafficShift.LINEAR
        else None,
    )
    return Cfn.DeploymentConfigProperty(
        auto_rollback_configuration=rollback,
        blue_green_update_policy=Cfn.BlueGreenUpdatePolicyProperty(
            traffic_routing_configuration=routing,
            termination_wait_in_seconds=rollout.termination_wait_seconds,
            maximum_execution_timeout_in_seconds=rollout.max_execution_timeout_seconds,
        ),
    )


IC = sagemaker.CfnInferenceComponent


def component_deployment_config(
    rollout: Rollout, *, rollback_alarm_names: Sequence[str]
) -> sagemaker.CfnInferenceComponent.InferenceComponentDeploymentConfigProperty:
    """An inference component's ``DeploymentConfig``: rolling batches of copies (the only policy
    ``InferenceComponentDeploymentConfig`` has; docs.aws.amazon.com/sagemaker/latest/
    APIReference/API_InferenceComponentDeploymentConfig.html), with automatic rollback on
    ``rollback_alarm_names``. A new Model (``model_version``) is a new ``ModelName`` in the
    component's Specification, which CloudFormation applies with UpdateInferenceComponent under
    this policy; the other components of the endpoint are not touched."""

    def percent(value: int) -> IC.InferenceComponentCapacitySizeProperty:
        return IC.InferenceComponentCapacitySizeProperty(type="CAPACITY_PERCENT", value=value)

    return IC.InferenceComponentDeploymentConfigProperty(
        auto_rollback_configuration=IC.AutoRollbackConfigurationProperty(
            alarms=[IC.AlarmProperty(alarm_name=name) for name in rollback_alarm_names]
        )
        if rollback_alarm_names
        else None,
        rolling_update_policy=IC.InferenceComponentRollingUpdatePolicyProperty(
            maximum_batch_size=percent(rollout.rolling_batch_percent),
            wait_interval_in_seconds=rollout.wait_interval_seconds,
            maximum_execution_timeout_in_seconds=rollout.max_execution_timeout_seconds,
            rollback_maximum_batch_size=percent(rollout.rollback_batch_percent)
            if rollout.rollback_batch_percent is not None
            else None,
        ),
    )
