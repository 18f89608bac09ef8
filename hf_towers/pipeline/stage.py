"""One environment as a CDK Pipelines stage: the same stacks ``app.py`` deploys."""

from __future__ import annotations

from typing import Any

from aws_cdk import Environment, Stage
from constructs import Construct

from hf_towers.config.models import EnvironmentConfig
from hf_towers.environment import DeployedEnvironment, add_environment
from hf_towers.pipeline.smoke import SmokeTestStack, smoke_towers


class EnvironmentStage(Stage):
    """``add_environment`` in the environment's account/region (+ the smoke-test role)."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        config: EnvironmentConfig,
        tooling_account: str,
        pipeline_stack_name: str,
        smoke_test: bool,
        **kwargs: Any,
    ) -> None:
        if config.account is None:
            raise ValueError(f"{config.environment}: a pipeline stage needs an account")
        super().__init__(
            scope, id_, env=Environment(account=config.account, region=config.region), **kwargs
        )
        self.config = config
        self.deployed: DeployedEnvironment = add_environment(self, config)
        self.smoke: SmokeTestStack | None = None
        if smoke_test and smoke_towers(config):
            self.smoke = SmokeTestStack(
                self,
                config.smoke_stack_name,
                stack_name=config.smoke_stack_name,
                config=config,
                tooling_account=tooling_account,
                pipeline_stack_name=pipeline_stack_name,
                description=f"{config.project} {config.environment}: role of the pipeline's smoke test",
            )
            for name in smoke_towers(config):
                self.smoke.add_stack_dependency(self.deployed.towers[name])
