"""Post-deploy smoke test of one environment: a role the pipeline may assume, and the commands.

The pipeline's CodeBuild step (tooling account) assumes ``<project>-<env>-smoke-test`` in the
environment's account through an AWS CLI profile (``credential_source = EcsContainer``, the
CodeBuild container's credentials) and calls ``aws sagemaker-runtime invoke-endpoint`` once per
endpoint, with endpoint names read from the tower stacks' ``EndpointName`` outputs (a tower of
a shared endpoint also with ``--inference-component-name``, its component's name from config).
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping, Sequence
from typing import Any

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from hf_towers.config.models import EnvironmentConfig, Tower, TowerKind
from hf_towers.constructs.inference_component import ComponentRef
from hf_towers.constructs.tower_endpoint import EndpointRef

PROFILE = "smoke"
# A 1x1 PNG: enough for the vision tower's processor to resize and embed.
TINY_PNG_BASE64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


def smoke_role_name(config: EnvironmentConfig) -> str:
    """The role the pipeline assumes in the environment's account."""
    return f"{config.prefix}-smoke-test"[:64]


def smoke_towers(config: EnvironmentConfig) -> list[str]:
    """Towers with an endpoint ``InvokeEndpoint`` can call (async endpoints are skipped)."""
    return config.invokable_towers


def endpoint_variable(tower: str) -> str:
    """Shell variable holding the tower's endpoint name in the smoke step."""
    return "ENDPOINT_" + tower.upper().replace("-", "_")


def payload(tower: Tower) -> dict[str, Any]:
    """A minimal valid request for the tower (docs/inference.md)."""
    if tower.kind is TowerKind.VISION:
        return {"inputs": [TINY_PNG_BASE64]}
    if tower.kind is TowerKind.TEXT:
        return {"inputs": ["a photo of a red bicycle"]}
    if tower.hf_task == "question-answering":
        return {
            "inputs": {
                "question": "What serves the model?",
                "context": "The model is served by an Amazon SageMaker endpoint.",
            }
        }
    return {"inputs": "Deployment smoke test."}


def smoke_commands(
    config: EnvironmentConfig, role_arn_variable: str = "SMOKE_ROLE_ARN"
) -> list[str]:
    """Shell commands (one CodeBuild phase) that invoke every endpoint of ``config`` once."""
    commands = [
        "set -euo pipefail",
        f'aws configure set profile.{PROFILE}.role_arn "${role_arn_variable}"',
        f"aws configure set profile.{PROFILE}.credential_source EcsContainer",
        f"aws configure set profile.{PROFILE}.region {config.region}",
    ]
    for name in smoke_towers(config):
        body = f"smoke-{name}.json"
        out = f"smoke-{name}.out"
        component = config.inference_component_name(name)
        # A tower of a shared endpoint is invoked through its inference component.
        target = f" --inference-component-name {component}" if component else ""
        commands += [
            f"printf '%s' {shlex.quote(json.dumps(payload(config.towers[name])))} > {body}",
            f"aws sagemaker-runtime invoke-endpoint --profile {PROFILE} "
            f'--endpoint-name "${endpoint_variable(name)}"{target} --content-type application/json '
            f"--accept application/json --body fileb://{body} {out}",
            f"python3 -c 'import json, sys; json.load(open(sys.argv[1]))' {out}",
            f'echo "smoke test passed: {name} (${endpoint_variable(name)})"',
        ]
    return commands


class SmokeTestStack(Stack):
    """``<project>-<env>-smoke``: the role the pipeline's smoke test assumes, and nothing else."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        config: EnvironmentConfig,
        tooling_account: str,
        pipeline_stack_name: str,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id_, **kwargs)
        endpoints = list(dict.fromkeys(config.endpoint_name(n) for n in smoke_towers(config)))
        components = [
            ComponentRef(component, config.endpoint_name(name))
            for name in smoke_towers(config)
            if (component := config.inference_component_name(name)) is not None
        ]
        if not endpoints:
            raise ValueError(f"{config.environment} has no endpoint to smoke-test")
        self.role = iam.Role(
            self,
            "Role",
            role_name=smoke_role_name(config),
            description=f"Assumed by the {pipeline_stack_name} smoke test: invoke the endpoints once",
            assumed_by=iam.AccountPrincipal(tooling_account).with_conditions(
                {
                    "ArnLike": {
                        "aws:PrincipalArn": f"arn:{self.partition}:iam::{tooling_account}:role/{pipeline_stack_name}-*"
                    }
                }
            ),
        )
        self.policy = iam.ManagedPolicy(
            self,
            "Policy",
            description="sagemaker:InvokeEndpoint on this environment's endpoints only",
            roles=[self.role],
            statements=[
                iam.PolicyStatement(
                    sid="InvokeEndpoints",
                    actions=["sagemaker:InvokeEndpoint"],
                    # InvokeEndpoint authorizes the endpoint and, for a tower of a shared
                    # endpoint, its inference component (Service Authorization Reference,
                    # list_amazonsagemaker.html).
                    resources=[
                        *(EndpointRef(n).arn(self) for n in endpoints),
                        *(c.arn(self) for c in components),
                    ],
                )
            ],
        )
        self.role_arn_output = CfnOutput(
            self, "RoleArn", value=self.role.role_arn, description="Smoke-test role"
        )


def endpoint_outputs(towers: Mapping[str, Stack], names: Sequence[str]) -> dict[str, CfnOutput]:
    """``ENDPOINT_<TOWER>`` -> the tower stack's ``EndpointName`` output."""
    outputs: dict[str, CfnOutput] = {}
    for name in names:
        output = towers[name].node.try_find_child("EndpointName")
        if not isinstance(output, CfnOutput):
            raise ValueError(f"tower stack {towers[name].stack_name} has no EndpointName output")
        outputs[endpoint_variable(name)] = output
    return outputs
