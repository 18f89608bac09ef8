"""The self-mutating delivery pipeline (tooling account): source, test + synth, one stage per
environment in config order, a manual approval before protected environments, smoke tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import CfnResource, Duration, RemovalPolicy, Stack, pipelines
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from hf_towers.compliance import acknowledge, iam5_findings
from hf_towers.config.models import EnvironmentConfig
from hf_towers.config.pipeline import PipelineConfig
from hf_towers.constructs.buckets import access_log_bucket, encrypted_bucket
from hf_towers.pipeline.nag import acknowledge_framework_policies, default_policies
from hf_towers.pipeline.registry import (
    approval_event_pattern,
    package_groups,
    registry_read_statements,
    resolve_command,
)
from hf_towers.pipeline.smoke import endpoint_outputs, smoke_commands, smoke_role_name, smoke_towers
from hf_towers.pipeline.stage import EnvironmentStage

PIPELINE_CONFIG_CONTEXT = "pipeline"
BUILD_IMAGE = codebuild.LinuxBuildImage.STANDARD_7_0  # Ubuntu 22.04, Python 3.11, Node 20


def synth_commands(
    pipeline_config_file: str, resolve: Sequence[str] = (), registry_region: str = ""
) -> list[str]:
    """The gate (``make test``); ``resolve-packages`` for the environment files in ``resolve``
    (those with ``model_package`` towers: what the registry approved is what deploys); then the
    pipeline app's synth into ``cdk.out``."""
    return [
        "make test",
        *([resolve_command(resolve, registry_region)] if resolve else []),
        f'npx cdk synth -a ".venv/bin/python pipeline_app.py" -c {PIPELINE_CONFIG_CONTEXT}={pipeline_config_file}',
    ]


class PipelineStack(Stack):
    """``<project>-pipeline`` in the tooling account."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        config: PipelineConfig,
        environments: Sequence[EnvironmentConfig],
        pipeline_config_file: str = "config/pipeline.yaml",
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id_, **kwargs)
        self.config = config
        self.source = pipelines.CodePipelineSource.connection(
            config.repository, config.branch, connection_arn=config.connection_arn
        )
        self.artifact_key = kms.Key(
            self,
            "ArtifactKey",
            description=f"{config.project} pipeline artifacts (shared with the target accounts)",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.access_logs = access_log_bucket(
            self,
            "AccessLogs",
            removal_policy=RemovalPolicy.RETAIN,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(365))],
        )
        self.artifact_bucket = encrypted_bucket(
            self,
            "Artifacts",
            key=self.artifact_key,
            access_logs=self.access_logs,
            access_log_prefix="artifacts/",
            removal_policy=RemovalPolicy.RETAIN,
            lifecycle_rules=[
                s3.LifecycleRule(
                    noncurrent_version_expiration=Duration.days(30),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
        )
        defaults = pipelines.CodeBuildOptions(
            build_environment=codebuild.BuildEnvironment(
                build_image=BUILD_IMAGE, compute_type=codebuild.ComputeType.MEDIUM
            ),
            partial_build_spec=codebuild.BuildSpec.from_object(
                {"phases": {"install": {"runtime-versions": {"python": "3.11"}}}}
            ),
            timeout=Duration.minutes(60),
        )
        # Registry-backed towers (README, 'Registry and approval'): the registry is in this
        # (tooling) account and region; the build step resolves it, and may only read it.
        self.package_groups = package_groups(environments)
        resolve = [
            file
            for file, env_config in zip(config.environments, environments, strict=True)
            if any(t.model_package is not None for t in env_config.towers.values())
        ]
        self.synth_step = pipelines.CodeBuildStep(
            "Synth",
            input=self.source,
            commands=synth_commands(pipeline_config_file, resolve, config.tooling_region),
            primary_output_directory="cdk.out",
            role_policy_statements=registry_read_statements(self, self.package_groups),
        )
        # Our own CodePipeline with our artifact bucket (KMS key with rotation, versioned,
        # access-logged): CDK Pipelines grants the target accounts' deploy roles on key and bucket.
        self.code_pipeline = codepipeline.Pipeline(
            self,
            "CodePipeline",
            pipeline_name=f"{config.project}-delivery",
            artifact_bucket=self.artifact_bucket,
            restart_execution_on_update=True,
            enable_key_rotation=True,  # also for the cross-region replication keys
            pipeline_type=codepipeline.PipelineType.V2,
        )
        self.pipeline = pipelines.CodePipeline(
            self,
            "Pipeline",
            code_pipeline=self.code_pipeline,
            synth=self.synth_step,
            self_mutation=True,
            code_build_defaults=defaults,
            docker_enabled_for_synth=False,
            publish_assets_in_parallel=False,
        )
        self.stages: list[EnvironmentStage] = []
        self.approvals: dict[str, pipelines.ManualApprovalStep] = {}
        self.smoke_steps: dict[str, pipelines.CodeBuildStep] = {}
        for env_config in environments:
            stage = EnvironmentStage(
                self,
                env_config.environment,
                config=env_config,
                tooling_account=config.tooling_account,
                pipeline_stack_name=self.stack_name,
                smoke_test=config.smoke_test,
            )
            pre: list[pipelines.Step] = []
            if env_config.protected:
                approval = pipelines.ManualApprovalStep(
                    f"Approve-{env_config.environment}",
                    comment=f"Promote to protected environment {env_config.environment} "
                    f"({env_config.account}, {env_config.region})?",
                )
                self.approvals[env_config.environment] = approval
                pre.append(approval)
            post: list[pipelines.Step] = []
            if stage.smoke is not None:
                step = self._smoke_step(stage, env_config)
                self.smoke_steps[env_config.environment] = step
                post.append(step)
            self.pipeline.add_stage(stage, pre=pre, post=post)
            self.stages.append(stage)
        self.pipeline.build_pipeline()
        self._grant_connection(config.connection_arn)
        self.approval_rule: events.Rule | None = None
        if config.deploy_on_approval and self.package_groups:
            self.approval_rule = self._approval_rule(self.package_groups)
        self._acknowledge()

    def _approval_rule(self, groups: Sequence[str]) -> events.Rule:
        """Start the pipeline when a version of one of ``groups`` becomes Approved.

        SageMaker sends "SageMaker Model Package State Change" events to the default bus of the
        registry's account and region (this stack's): no forwarding between accounts is needed
        (README, 'Registry and approval', for a registry in another account).
        """
        role = iam.Role(
            self,
            "ApprovalRuleRole",
            assumed_by=iam.ServicePrincipal(
                "events.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": self.account}},
            ),
            description="EventBridge: start the delivery pipeline on an approved model package",
        )
        policy = iam.ManagedPolicy(
            self,
            "ApprovalRulePolicy",
            statements=[
                iam.PolicyStatement(
                    actions=["codepipeline:StartPipelineExecution"],
                    resources=[self.code_pipeline.pipeline_arn],
                )
            ],
        )
        role.add_managed_policy(policy)
        rule = events.Rule(
            self,
            "ApprovedPackageRule",
            description="An approved version of a deployed Model Package Group starts delivery",
            event_pattern=approval_event_pattern(groups),
        )
        # The target would add its grant to an inline DefaultPolicy: the managed policy above
        # holds it instead (the HIPAA/NIST/PCI packs reject inline policies).
        rule.add_target(
            targets.CodePipeline(self.code_pipeline, event_role=role.without_policy_updates())
        )
        return rule

    def _grant_connection(self, connection_arn: str) -> None:
        """Let the source action use a connection whose ARN has the ``codeconnections`` prefix.

        CDK grants ``codestar-connections:UseConnection`` only. Since the rename the console
        creates ``arn:aws:codeconnections:...`` connections, and "when specifying a resource in
        the IAM policy, the service prefix needs to match that of the resource"
        (https://docs.aws.amazon.com/dtconsole/latest/userguide/rename.html): without this the
        source stage fails with insufficient permissions.
        """
        if connection_arn.split(":")[2:3] != ["codeconnections"]:
            return
        # CDK Pipelines binds the source action in stage "Source" with its own action role.
        source = self.code_pipeline.node.try_find_child("Source")
        roles = [n for n in source.node.find_all() if isinstance(n, iam.Role)] if source else []
        if not roles:
            raise RuntimeError(
                "the pipeline's Source stage has no action role to grant the connection to"
            )
        for role in roles:
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=["codeconnections:UseConnection"], resources=[connection_arn]
                )
            )

    def _acknowledge(self) -> None:
        """What CDK Pipelines generates; our own buckets' two documented exceptions."""
        cfn_pipeline = self.code_pipeline.node.default_child
        if isinstance(cfn_pipeline, CfnResource):
            # cfn-lint 1.x reports CDK's Fn::Join role ARNs in the CloudFormation deploy actions
            # as E3703 ("prefer Fn::Sub"), and W3005 for the DependsOn CDK adds next to the
            # role's GetAtt: style of generated code, not errors of the pipeline.
            cfn_pipeline.add_metadata("cfn-lint", {"config": {"ignore_checks": ["E3703", "W3005"]}})
        registry = registry_read_statements(self, self.package_groups)
        own = iam5_findings(self.resolve({"Statement": [s.to_json() for s in registry]}))
        policies = [*default_policies(self.code_pipeline), *default_policies(self.pipeline)]
        acknowledge_framework_policies(policies, own=own)
        for policy in policies:
            document = self.resolve(policy.document.to_json())
            found = [w for w in iam5_findings(document) if w in own]
            if found and policy.node.default_child is not None:
                acknowledge(
                    policy.node.default_child,
                    "The synth step's resolve-packages lists and describes the versions of the "
                    "deployed Model Package Groups: versioned package ARNs end in the version "
                    "number, which is what it looks up, so each group's versions are '<group>/*'.",
                    *found,
                )
        for root in (self.code_pipeline, self.pipeline):
            for node in root.node.find_all():
                if isinstance(node, codebuild.CfnProject):
                    acknowledge(
                        node,
                        "The project's source is the pipeline's artifact (type CODEPIPELINE), "
                        "fetched through the CodeStar connection: no repository URL or "
                        "credentials are stored in the project.",
                        "HIPAA.Security-CodeBuildProjectSourceRepoUrl",
                        "PCI.DSS.321-CodeBuildProjectSourceRepoUrl",
                    )
        for bucket in (self.access_logs, self.artifact_bucket):
            acknowledge(
                bucket,
                "Pipeline artifacts and their access logs are rebuilt from the repository on "
                "every run; cross-region replication would copy transient build outputs.",
                "HIPAA.Security-S3BucketReplicationEnabled",
                "NIST.800.53.R5-S3BucketReplicationEnabled",
                "PCI.DSS.321-S3BucketReplicationEnabled",
            )
        for support in self.code_pipeline.cross_region_support.values():
            acknowledge(
                support.replication_bucket,
                "CDK's cross-region support stack: the replication bucket only carries this "
                "pipeline's transient artifacts into the region of a stage (KMS-encrypted with a "
                "rotated key, TLS only); the bucket is generated by CDK Pipelines and its "
                "settings are not configurable.",
                "AwsSolutions-S1",
                "HIPAA.Security-S3BucketLoggingEnabled",
                "NIST.800.53.R5-S3BucketLoggingEnabled",
                "PCI.DSS.321-S3BucketLoggingEnabled",
                "HIPAA.Security-S3BucketVersioningEnabled",
                "NIST.800.53.R5-S3BucketVersioningEnabled",
                "PCI.DSS.321-S3BucketVersioningEnabled",
                "HIPAA.Security-S3BucketReplicationEnabled",
                "NIST.800.53.R5-S3BucketReplicationEnabled",
                "PCI.DSS.321-S3BucketReplicationEnabled",
            )

    def _smoke_step(
        self, stage: EnvironmentStage, config: EnvironmentConfig
    ) -> pipelines.CodeBuildStep:
        assert stage.smoke is not None
        outputs = endpoint_outputs(stage.deployed.towers, smoke_towers(config))
        return pipelines.CodeBuildStep(
            f"SmokeTest-{config.environment}",
            commands=smoke_commands(config),
            env_from_cfn_outputs={"SMOKE_ROLE_ARN": stage.smoke.role_arn_output, **outputs},
            role_policy_statements=[
                iam.PolicyStatement(
                    actions=["sts:AssumeRole"],
                    resources=[
                        f"arn:{self.partition}:iam::{config.account}:role/{smoke_role_name(config)}"
                    ],
                )
            ],
        )
