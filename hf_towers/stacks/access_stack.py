"""Access stack of an environment: the deployer policy over every tower."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from hf_towers.constructs.deployer_policy import DeployerPolicy
from hf_towers.constructs.tower import Tower
from hf_towers.stacks.artifacts_stack import ArtifactsStack


class AccessStack(Stack):
    """Who may deploy this environment (the invoke side is ``Tower.grant_invoke``)."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        environment: str,
        artifacts: ArtifactsStack,
        towers: Sequence[Tower],
        endpoint_names: Sequence[str],
        deployer_role_names: Sequence[str],
        shared_endpoint_role_arns: Sequence[str] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id_, **kwargs)
        self.deployer = DeployerPolicy(
            self,
            "DeployerPolicy",
            environment=environment,
            bucket_arn=artifacts.import_bucket_arn(),
            key_arn=artifacts.store.key.key_arn,
            execution_role_arns=[
                *(tower.execution_role.role_arn for tower in towers),
                *shared_endpoint_role_arns,
            ],
            endpoint_names=endpoint_names,
            attach_to_role_names=deployer_role_names,
            components=[tower.component.ref for tower in towers if tower.component is not None],
        )
        CfnOutput(
            self,
            "DeployerPolicyArn",
            value=self.deployer.managed_policy_arn,
            description="Attach to the CI/deployer role",
        )
