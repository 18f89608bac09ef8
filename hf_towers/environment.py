"""Compose one environment's stacks from its config (used by app.py and by pipeline stages)."""

from __future__ import annotations

from dataclasses import dataclass, field

from aws_cdk import Environment, RemovalPolicy, Stack, Tags
from constructs import Construct

from hf_towers.config.models import EnvironmentConfig
from hf_towers.config.models import RemovalPolicy as ConfigRemovalPolicy
from hf_towers.constructs.deployer_policy import ENVIRONMENT_TAG
from hf_towers.constructs.tower import ComponentPlacement
from hf_towers.stacks.access_stack import AccessStack
from hf_towers.stacks.api_stack import ApiStack
from hf_towers.stacks.artifacts_stack import ArtifactsStack
from hf_towers.stacks.shared_endpoint_stack import SharedEndpointStack
from hf_towers.stacks.tower_stack import RETENTION, TowerStack
from hf_towers.stacks.training_stack import TrainingStack


@dataclass(frozen=True)
class DeployedEnvironment:
    """The stacks of one environment."""

    artifacts: ArtifactsStack
    towers: dict[str, TowerStack]
    access: AccessStack
    api: ApiStack | None = None
    shared: dict[str, SharedEndpointStack] = field(default_factory=dict)
    training: TrainingStack | None = None

    @property
    def stacks(self) -> list[Stack]:
        """Every stack of the environment, in deployment order."""
        extra: list[Stack] = [s for s in (self.api, self.training) if s is not None]
        return [self.artifacts, *self.shared.values(), *self.towers.values(), self.access, *extra]


def removal_policy(config: EnvironmentConfig) -> RemovalPolicy:
    """The CDK removal policy for the config's ``removal_policy``."""
    return (
        RemovalPolicy.RETAIN
        if config.removal_policy is ConfigRemovalPolicy.RETAIN
        else RemovalPolicy.DESTROY
    )


def add_environment(scope: Construct, config: EnvironmentConfig) -> DeployedEnvironment:
    """Add the artifacts stack, one stack per tower and the access stack for ``config``."""
    env = Environment(account=config.account, region=config.region)
    policy = removal_policy(config)
    artifacts = ArtifactsStack(
        scope,
        config.artifacts_stack_name,
        stack_name=config.artifacts_stack_name,
        removal_policy=policy,
        artifacts=config.artifacts,
        component_logs=bool(config.shared_endpoints),
        env=env,
        description=f"{config.project} {config.environment}: KMS key and model artifact buckets (stateful)",
        termination_protection=config.protected,
    )
    shared: dict[str, SharedEndpointStack] = {}
    for name, settings in config.shared_endpoints.items():
        shared[name] = SharedEndpointStack(
            scope,
            config.shared_stack_name(name),
            stack_name=config.shared_stack_name(name),
            endpoint_name=config.shared_endpoint_name(name),
            settings=settings,
            artifacts=artifacts,
            removal_policy=policy,
            log_retention=RETENTION[config.log_retention_days],
            network_isolation=all(config.towers[t].network_isolation for t in settings.towers),
            env=env,
            description=f"{config.project} {config.environment}: shared endpoint '{name}' "
            f"(inference components: {', '.join(settings.towers)})",
            termination_protection=config.protected,
        )
    towers: dict[str, TowerStack] = {}
    for name in config.towers:
        tower = config.placed_tower(name)
        host = config.shared_endpoint_of(name)
        component = config.inference_component_name(name)
        placement = (
            ComponentPlacement(endpoint_name=config.endpoint_name(name), component_name=component)
            if host is not None and component is not None
            else None
        )
        towers[name] = TowerStack(
            scope,
            config.tower_stack_name(name),
            stack_name=config.tower_stack_name(name),
            tower_name=name,
            tower=tower,
            endpoint_name=config.endpoint_name(name),
            artifacts=artifacts,
            region=config.region,
            removal_policy=policy,
            log_retention_days=config.log_retention_days,
            placement=placement,
            env=env,
            description=f"{config.project} {config.environment}: {tower.kind.value} tower '{name}'",
            # The production endpoints: a protected environment protects every stack.
            termination_protection=config.protected,
        )
        if host is not None:
            # Not a reference (the component names its endpoint from config): an order, so
            # the endpoint is in service before its components are created.
            towers[name].add_stack_dependency(shared[host])
    access = AccessStack(
        scope,
        config.access_stack_name,
        stack_name=config.access_stack_name,
        environment=config.environment,
        artifacts=artifacts,
        towers=[stack.tower for stack in towers.values()],
        endpoint_names=config.endpoint_names,
        shared_endpoint_role_arns=[stack.role_arn for stack in shared.values()],
        deployer_role_names=config.deployer_role_names,
        env=env,
        description=f"{config.project} {config.environment}: deployer policy",
        termination_protection=config.protected,
    )
    api: ApiStack | None = None
    if config.api.enabled:
        api = ApiStack(
            scope,
            config.api_stack_name,
            stack_name=config.api_stack_name,
            config=config,
            log_retention=RETENTION[config.log_retention_days],
            removal_policy=policy,
            env=env,
            description=f"{config.project} {config.environment}: REST API in front of the tower endpoints",
            termination_protection=config.protected,
        )
        for route in api.routes:
            # Not a reference (the API names endpoints from config): an order, so the first
            # calls after a deployment find the endpoints.
            api.add_stack_dependency(towers[route.tower])
    training: TrainingStack | None = None
    if config.training.enabled:
        training = TrainingStack(
            scope,
            f"{config.prefix}-training",
            stack_name=f"{config.prefix}-training",
            config=config,
            artifacts=artifacts,
            removal_policy=policy,
            env=env,
            description=f"{config.project} {config.environment}: model registry and fine-tuning pipeline",
            termination_protection=config.protected,
        )
        for name in config.training.retrain_on_drift.towers:
            # The rule matches schedule ARNs by name: deploy the schedules first.
            training.add_stack_dependency(towers[name])
    extra = [s for s in (api, training) if s is not None]
    for stack in (artifacts, *shared.values(), *towers.values(), access, *extra):
        for key, value in config.tags.items():
            Tags.of(stack).add(key, value)
        Tags.of(stack).add(ENVIRONMENT_TAG, config.environment)
        Tags.of(stack).add("hf-towers:project", config.project)
    return DeployedEnvironment(
        artifacts=artifacts,
        towers=towers,
        access=access,
        api=api,
        training=training,
        shared=shared,
    )
