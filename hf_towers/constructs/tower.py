"""``Tower``: everything one tower deploys (role, model data, Model, endpoint and operations).

The unit of reuse: a stack places one ``Tower`` (``TowerStack`` does, under the id ``Default`` so
logical ids are those of the resources themselves) and adds its outputs. Inputs are keyword-only
and typed; the artifact bucket comes as an ``ArtifactsRef`` (whatever stack owns it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from hf_towers.config.models import PROJECT_ROOT, TowerKind
from hf_towers.config.models import Tower as TowerSettings
from hf_towers.config.operations import InferenceMode, keeps_capacity_on_update
from hf_towers.config.shared_endpoints import copies_of
from hf_towers.constructs.alarm_topic import AlarmTopic
from hf_towers.constructs.async_inference import AsyncOutput
from hf_towers.constructs.autoscaling import VariantAutoscaling
from hf_towers.constructs.component_autoscaling import ComponentAutoscaling
from hf_towers.constructs.component_dashboard import ComponentDashboard
from hf_towers.constructs.dashboard import EndpointDashboard
from hf_towers.constructs.data_capture import data_capture_config, default_capture_prefix
from hf_towers.constructs.endpoint_alarms import EndpointAlarms
from hf_towers.constructs.execution_role import ExecutionRole
from hf_towers.constructs.inference_component import ComponentRef, TowerComponent
from hf_towers.constructs.log_encryption import log_group_removal
from hf_towers.constructs.model_data import ExistingModelData, ModelData
from hf_towers.constructs.model_monitor import DataQualityMonitor
from hf_towers.constructs.repack import RepackedModelData
from hf_towers.constructs.rollout import component_deployment_config, deployment_config
from hf_towers.constructs.s3_location import S3Prefix
from hf_towers.constructs.tower_endpoint import EndpointRef, TowerEndpoint
from hf_towers.constructs.tower_model import TowerModel
from hf_towers.images import ImageRef


class ArtifactsRef:
    """The environment's artifact bucket and key, as a tower uses them.

    ``import_bucket_arn`` gives the bucket ARN as the tower's stack may reference it (e.g. an
    ``Fn::ImportValue`` of a named export); it is called once, on first use, so a tower that
    never touches the bucket adds no import.
    """

    def __init__(self, *, key: kms.IKey, import_bucket_arn: Callable[[], str]) -> None:
        self.key = key
        self._import_bucket_arn = import_bucket_arn

    @cached_property
    def bucket_arn(self) -> str:
        return self._import_bucket_arn()

    def prefix(self, prefix: str) -> S3Prefix:
        """``prefix`` in the artifact bucket."""
        return S3Prefix(bucket_arn=self.bucket_arn, prefix=prefix)


@dataclass(frozen=True)
class ComponentPlacement:
    """Where a tower of a shared endpoint goes: its inference component ``component_name`` on
    the endpoint ``endpoint_name`` (both from config; the endpoint is another stack's)."""

    endpoint_name: str
    component_name: str


class Tower(Construct):
    """One tower. With ``settings.deploy_endpoint`` false only the role and the Model exist;
    with ``placement`` the Model is deployed as an inference component of a shared endpoint
    (no EndpointConfig or Endpoint of its own)."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        name: str,
        settings: TowerSettings,
        endpoint_name: str,
        image: ImageRef,
        artifacts: ArtifactsRef,
        region: str,
        removal_policy: RemovalPolicy,
        log_retention: logs.RetentionDays,
        placement: ComponentPlacement | None = None,
    ) -> None:
        super().__init__(scope, id_)
        self.name = name
        self.placement = placement
        self.settings = settings
        tower_name, tower, store = name, settings, artifacts
        model_data = self._model_data(tower_name, tower, store, removal_policy)

        self.log_group: logs.LogGroup | None = None
        if placement is not None:
            # Container logs of a component go to its own group, not the endpoint's.
            self.log_group = logs.LogGroup(
                self,
                "ComponentLogs",
                log_group_name=f"/aws/sagemaker/InferenceComponents/{placement.component_name}",
                retention=log_retention,
                encryption_key=store.key,
                removal_policy=log_group_removal(removal_policy),
            )
        elif tower.deploy_endpoint:
            self.log_group = logs.LogGroup(
                self,
                "EndpointLogs",
                log_group_name=f"/aws/sagemaker/Endpoints/{endpoint_name}",
                retention=log_retention,
                encryption_key=store.key,
                removal_policy=log_group_removal(removal_policy),
            )

        # Operations that write to S3 (README, 'Operations'): where, and which topics they notify.
        self.captures: S3Prefix | None = None
        if tower.deploy_endpoint and tower.data_capture.enabled:
            self.captures = self._artifact_prefix(
                store, tower.data_capture.prefix or default_capture_prefix(tower_name)
            )
        self.async_output: AsyncOutput | None = None
        if tower.deploy_endpoint and tower.inference_mode is InferenceMode.ASYNC:
            self.async_output = self._async_output(tower, store)
        writes = [p for p in (self.captures,) if p is not None]
        reads: list[S3Prefix] = []
        output_keys = [store.key.key_arn] if self.captures is not None else []
        if self.async_output is not None:
            writes += [self.async_output.output, self.async_output.failures]
            reads.append(self.async_output.requests)
            output_keys.append(self.async_output.output_key_arn)

        self.execution_role = ExecutionRole(
            self,
            "ExecutionRole",
            key=store.key,
            image=image,
            model_data_statements=model_data.read_statements(),
            log_group=self.log_group,
            write_object_arns=[p.objects_arn for p in writes],
            read_object_arns=[p.objects_arn for p in reads],
            output_key_arns=output_keys,
            publish_topic_arns=self.async_output.topic_arns if self.async_output else [],
            subnet_ids=tower.network.subnet_ids,
            security_group_ids=tower.network.security_group_ids,
        )
        self.model = TowerModel(
            self,
            "Model",
            image_uri=image.uri,
            model_data=model_data,
            execution_role_arn=self.execution_role.role_arn,
            model_version=tower.model_version
            if tower.model_package is None
            else str(tower.model_package.resolved.version),
            package=tower.model_package.resolved if tower.model_package is not None else None,
            environment=self._container_environment(tower),
            subnet_ids=tower.network.subnet_ids,
            security_group_ids=tower.network.security_group_ids,
            enable_network_isolation=tower.network_isolation,
        )
        # The role's policy must exist before SageMaker validates access to image and data.
        self.model.node.add_dependency(self.execution_role.policy)

        self.endpoint: TowerEndpoint | None = None
        self.component: TowerComponent | None = None
        self.component_autoscaling: ComponentAutoscaling | None = None
        self.alarm_topic: AlarmTopic | None = None
        self.alarms: EndpointAlarms | None = None
        self.autoscaling: VariantAutoscaling | None = None
        self.monitor: DataQualityMonitor | None = None
        self.dashboard: EndpointDashboard | ComponentDashboard | None = None
        endpoint = EndpointRef(endpoint_name)
        if placement is not None:
            self._add_component(tower, placement, removal_policy)
        elif tower.deploy_endpoint:
            if tower.monitoring.alarms:
                self.alarm_topic = AlarmTopic(self, "AlarmTopic", removal_policy=removal_policy)
                self.alarms = EndpointAlarms(
                    self,
                    "Alarms",
                    endpoint=endpoint,
                    settings=tower.monitoring,
                    topic=self.alarm_topic.topic,
                )
            rollback = (
                self.alarms.alarm_names if self.alarms and tower.rollout.auto_rollback else []
            )
            self.endpoint = TowerEndpoint(
                self,
                "Endpoint",
                model_name=self.model.model_name,
                endpoint=endpoint,
                instance_type=tower.instance_type,
                initial_instance_count=tower.initial_instance_count,
                key=store.key,
                serverless=tower.serverless
                if tower.inference_mode is InferenceMode.SERVERLESS
                else None,
                async_inference=self.async_output.config if self.async_output else None,
                data_capture=data_capture_config(
                    tower.data_capture, destination=self.captures, key_arn=store.key.key_arn
                )
                if self.captures is not None
                else None,
                deployment_config=deployment_config(tower.rollout, rollback_alarm_names=rollback),
                keep_instance_count=keeps_capacity_on_update(tower),
            )
            if self.log_group is not None:
                self.endpoint.node.add_dependency(self.log_group)
            self._add_operations(tower_name, tower, endpoint, store, region)

    def _add_component(
        self, tower: TowerSettings, placement: ComponentPlacement, removal_policy: RemovalPolicy
    ) -> None:
        """The inference component, its alarms (rollback too), copy autoscaling and dashboard."""
        assert tower.compute is not None  # config: every member tower has compute
        ref = ComponentRef(name=placement.component_name, endpoint_name=placement.endpoint_name)
        if tower.monitoring.alarms:
            self.alarm_topic = AlarmTopic(self, "AlarmTopic", removal_policy=removal_policy)
            self.alarms = EndpointAlarms(
                self,
                "Alarms",
                endpoint=ref,
                settings=tower.monitoring,
                topic=self.alarm_topic.topic,
            )
        rollback = self.alarms.alarm_names if self.alarms and tower.rollout.auto_rollback else []
        copies = copies_of(tower)
        self.component = TowerComponent(
            self,
            "Component",
            ref=ref,
            model_name=self.model.model_name,
            compute=tower.compute,
            copy_count=copies.initial,
            deployment_config=component_deployment_config(
                tower.rollout, rollback_alarm_names=rollback
            ),
        )
        if self.log_group is not None:
            self.component.node.add_dependency(self.log_group)
        self.component_autoscaling = ComponentAutoscaling(
            self, "Autoscaling", component=ref, copies=copies
        )
        # The scalable target exists only once the component does.
        self.component_autoscaling.node.add_dependency(self.component.resource)
        if tower.monitoring.dashboard:
            self.dashboard = ComponentDashboard(
                self,
                "Dashboard",
                component=ref,
                accelerated=tower.compute.accelerators is not None,
                alarms=self.alarms.alarms if self.alarms else [],
            )

    def _add_operations(
        self,
        tower_name: str,
        tower: TowerSettings,
        endpoint: EndpointRef,
        store: ArtifactsRef,
        region: str,
    ) -> None:
        """Autoscaling, drift monitoring and the dashboard of the endpoint."""
        assert self.endpoint is not None
        if tower.inference_mode is not InferenceMode.SERVERLESS and tower.autoscaling.enabled:
            low, high = tower.scaling_bounds
            self.autoscaling = VariantAutoscaling(
                self,
                "Autoscaling",
                endpoint=endpoint,
                settings=tower.autoscaling,
                min_capacity=low,
                max_capacity=high,
                asynchronous=tower.inference_mode is InferenceMode.ASYNC,
            )
            # The variant exists only once the endpoint does.
            self.autoscaling.node.add_dependency(self.endpoint.resource)
        if tower.model_monitor.enabled and self.captures is not None:
            self.monitor = DataQualityMonitor(
                self,
                "DataQualityMonitor",
                settings=tower.model_monitor,
                endpoint_name=endpoint.name,
                captures=self.captures,
                reports=self._artifact_prefix(store, f"model-monitor/{tower_name}"),
                key=store.key,
                region=region,
            )
            # The job definition validates that the endpoint exists.
            self.monitor.node.add_dependency(self.endpoint.resource)
        if tower.monitoring.dashboard:
            self.dashboard = EndpointDashboard(
                self,
                "Dashboard",
                endpoint=endpoint,
                mode=tower.inference_mode,
                instance_type=tower.instance_type,
                alarms=self.alarms.alarms if self.alarms else [],
            )

    def _async_output(self, tower: TowerSettings, store: ArtifactsRef) -> AsyncOutput:
        settings = tower.async_inference
        assert settings.output_prefix is not None  # config validation guarantees it

        def where(prefix: str) -> S3Prefix:
            if settings.bucket is None:
                return self._artifact_prefix(store, prefix)
            return S3Prefix.in_bucket(Stack.of(self), settings.bucket, prefix)

        return AsyncOutput(
            self,
            "AsyncInference",
            settings=settings,
            output=where(settings.output_prefix),
            failures=where(settings.effective_failure_prefix),
            requests=where(settings.effective_input_prefix),
            output_key_arn=settings.kms_key_arn or store.key.key_arn,
            key=store.key,
        )

    @staticmethod
    def _artifact_prefix(store: ArtifactsRef, prefix: str) -> S3Prefix:
        """``prefix`` in the environment's artifact bucket."""
        return store.prefix(prefix)

    def _model_data(
        self,
        tower_name: str,
        tower: TowerSettings,
        store: ArtifactsRef,
        removal_policy: RemovalPolicy,
    ) -> ModelData:
        """The artifact the Model reads: task models as uploaded; vision/text towers repacked
        with their code directory as ``code/`` into the artifact bucket under ``<tower>/``."""
        code_dir = tower.effective_code_dir
        # A registered package deploys the ModelDataUrl its resolved entry recorded, read (task
        # models) or repacked (vision/text) exactly like a model_uri.
        source_uri = (
            tower.model_package.resolved.model_data_url
            if tower.model_package is not None
            else tower.model_uri
        )
        if code_dir is None:
            return ExistingModelData(str(source_uri), partition=Stack.of(self).partition)
        # Imported through the named export, so cdk-nag prints the bucket ARN stably.
        bucket = s3.Bucket.from_bucket_arn(self, "ArtifactBucket", store.bucket_arn)
        return RepackedModelData(
            self,
            "ModelData",
            tower=tower_name,
            source_uri=source_uri,
            source_path=str(PROJECT_ROOT / tower.model_path) if tower.model_path else None,
            code_dir=str(PROJECT_ROOT / code_dir),
            bucket=bucket,
            key=store.key,
            entry_module=tower.entry_module,
            compressed=tower.compressed_model_data,
            max_ratio=tower.max_decompression_ratio,
            removal_policy=removal_policy,
        )

    @staticmethod
    def _container_environment(tower: TowerSettings) -> dict[str, str]:
        """Toolkit settings: SAGEMAKER_PROGRAM for code towers, HF_TASK for task models."""
        env = {"SAGEMAKER_CONTAINER_LOG_LEVEL": "20"}
        if tower.kind is TowerKind.TASK:
            env["HF_TASK"] = str(tower.hf_task)
        else:
            env["SAGEMAKER_PROGRAM"] = tower.entry_module
            env["TOWER"] = tower.kind.value
            if tower.main_module_name:
                env["MAIN_MODULE_NAME"] = tower.main_module_name
        return {**env, **tower.environment}

    def grant_invoke(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` invoke this tower's endpoint, or its inference component."""
        if self.component is not None:
            return self.component.grant_invoke(grantee)
        if self.endpoint is None:
            raise ValueError(
                f"tower {self.name!r} has deploy_endpoint: false; there is no endpoint to invoke"
            )
        return self.endpoint.grant_invoke(grantee)
