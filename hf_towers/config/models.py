"""Typed configuration of one deployment environment (one YAML file under ``config/``).

Parsed once in ``app.py``; everything below it receives these frozen models, never raw
dicts, environment variables or CDK context.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import (
    AfterValidator,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from hf_towers.config.api import ApiConfig, check_api_towers
from hf_towers.config.base import ACCOUNT_PATTERN, NAME_PATTERN, S3_URI_PATTERN, Strict
from hf_towers.config.operations import (
    AsyncInference,
    Autoscaling,
    DataCapture,
    InferenceMode,
    ModelMonitor,
    Monitoring,
    Network,
    Rollout,
    Serverless,
    check_operations,
    is_accelerated,
    scaling_bounds,
)
from hf_towers.config.packages import ModelPackage
from hf_towers.config.regions import check_region
from hf_towers.config.shared_endpoints import (
    Compute,
    Copies,
    SharedEndpoint,
    check_shared_endpoints,
)
from hf_towers.config.training import Training, check_training_towers

PROJECT_ROOT = Path(__file__).resolve().parents[2]
"""Relative paths in config (``code_dir``, ``model_path``) are relative to the project root."""
ECR_URI_PATTERN = r"^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/[a-z0-9._/-]+(:[\w.-]+|@sha256:[0-9a-f]{64})$"
# SageMaker endpoint names: 1-63 chars, alphanumerics and hyphens, not starting with a hyphen.
ENDPOINT_NAME_PATTERN = r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$"
ENV_KEY_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"

Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]

S3Uri = Annotated[str, StringConstraints(pattern=S3_URI_PATTERN)]


class RemovalPolicy(StrEnum):
    """What happens to stateful resources (key, buckets, generated artifacts) on stack delete."""

    RETAIN = "retain"
    DESTROY = "destroy"


class TowerKind(StrEnum):
    """``vision``/``text``: a half of a dual encoder with our inference code; ``task``: a plain
    Hugging Face model served by the toolkit's pipeline (``HF_TASK``), no custom code."""

    VISION = "vision"
    TEXT = "text"
    TASK = "task"


class Tower(Strict):
    """One SageMaker Model (+ EndpointConfig + Endpoint unless ``deploy_endpoint`` is false)."""

    kind: TowerKind
    model_uri: S3Uri | None = Field(
        default=None,
        description="S3 URI of the trained model.tar.gz (seed --model_uri); or model_path.",
    )
    model_path: str | None = Field(
        default=None,
        description="Local model.tar.gz or model folder uploaded as an asset (vision/text only); or model_uri.",
    )
    model_package: ModelPackage | None = Field(
        default=None,
        description="A registered, approved Model Package version (resolved by resolve-packages); or model_uri/model_path.",
    )
    compressed_model_data: bool = Field(
        default=True,
        description="False: weights copied uncompressed under a prefix, ModelDataSource S3Prefix (vision/text).",
    )
    max_decompression_ratio: float = Field(
        default=100.0,
        gt=1,
        le=10000,
        description="Repack refuses archives that inflate more than this.",
    )
    model_version: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,64}$")] = Field(
        default="1",
        description="Bumping it replaces Model and EndpointConfig; the Endpoint updates in place.",
    )
    endpoint_name: Annotated[str, StringConstraints(pattern=ENDPOINT_NAME_PATTERN)] | None = Field(
        default=None, description="Default: <project>-<environment>-<tower>."
    )
    instance_type: Annotated[str, StringConstraints(pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$")] = (
        "ml.g5.8xlarge"
    )
    initial_instance_count: int = Field(default=1, ge=1, le=100)
    deploy_endpoint: bool = Field(
        default=True, description="False: create the Model only (seed --deploy_model_as_endpoint)."
    )
    code_dir: str | None = Field(
        default=None,
        description="Folder (relative to the repo) put into the artifact as code/. Default: model_code/<kind> for vision/text.",
    )
    entry_module: Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*\.py$")] = (
        Field(
            default="inference.py",
            description="SAGEMAKER_PROGRAM: the module in code/ that the toolkit loads.",
        )
    )
    main_module_name: (
        Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_.]*$")] | None
    ) = Field(
        default=None,
        description="A user architecture module in code/ (seed --main_module_name), passed as MAIN_MODULE_NAME.",
    )
    hf_task: str | None = Field(
        default=None, description="HF_TASK for kind=task, e.g. question-answering."
    )
    image: str = Field(
        default="dlc",
        description="'dlc' (Hugging Face DLC for the versions below), 'build' (the custom serving image of seed 002, built by cdk deploy) or an ECR image URI (seed --docker_image).",
    )
    transformers_version: str = "4.51.3"
    pytorch_version: str = "2.6.0"
    environment: dict[Annotated[str, StringConstraints(pattern=ENV_KEY_PATTERN)], str] = Field(
        default_factory=dict
    )
    # Operations (README, 'Operations'): one field per concern, rules in config/operations.py.
    inference_mode: InferenceMode = InferenceMode.REALTIME
    serverless: Serverless = Field(default_factory=Serverless)
    async_inference: AsyncInference = Field(default_factory=AsyncInference)
    autoscaling: Autoscaling = Field(default_factory=Autoscaling)
    rollout: Rollout = Field(default_factory=Rollout)
    data_capture: DataCapture = Field(default_factory=DataCapture)
    model_monitor: ModelMonitor = Field(default_factory=ModelMonitor)
    monitoring: Monitoring = Field(default_factory=Monitoring)
    network: Network = Field(default_factory=Network)
    # Only for towers of a shared endpoint (README, 'Shared GPU endpoints').
    compute: Compute | None = Field(
        default=None, description="Reservation of one copy on the shared endpoint's instances."
    )
    copies: Copies | None = Field(
        default=None, description="Copy count of the tower's inference component; default copies."
    )

    @field_validator("image")
    @classmethod
    def _image(cls, value: str) -> str:
        if value in ("dlc", "build") or re.match(ECR_URI_PATTERN, value):
            return value
        raise ValueError(
            f"{value!r} is neither 'dlc', 'build' nor an ECR image URI like "
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/repo:tag"
        )

    @model_validator(mode="after")
    def _built_image_rules(self) -> Self:
        if self.image != "build":
            return self
        if self.kind is TowerKind.TASK:
            raise ValueError(
                "image: build bakes the vision/text towers' code: a kind 'task' model runs the "
                "toolkit's pipeline in the DLC; use image: dlc"
            )
        # A shared-endpoint tower runs on its endpoint's type (check_shared_endpoints).
        if self.compute is None and is_accelerated(self.instance_type):
            raise ValueError(
                f"image: build is CPU-only (torch's CPU wheel) but instance_type "
                f"{self.instance_type!r} has accelerators: use image: dlc (the same handlers run "
                "there) or a CPU instance type"
            )
        return self

    @model_validator(mode="after")
    def _kind_rules(self) -> Self:
        sources = [self.model_uri, self.model_path, self.model_package]
        if sum(source is not None for source in sources) != 1:
            raise ValueError(
                "give exactly one of model_uri (s3://...), model_path (a local file or folder) "
                "and model_package ({group, version}: a registered package version)"
            )
        if self.model_package is not None:
            if "model_version" in self.model_fields_set:
                raise ValueError(
                    "model_version is the package version for a model_package tower: remove "
                    "model_version (pin model_package.version instead)"
                )
            if not self.compressed_model_data:
                raise ValueError(
                    "a model package's ModelDataUrl is one model.tar.gz: remove "
                    "compressed_model_data: false"
                )
        if self.kind is TowerKind.TASK and self.model_path is not None:
            raise ValueError(
                "kind 'task' reads its artifact as it is: upload it and set model_uri instead of model_path"
            )
        if self.kind is TowerKind.TASK and not self.compressed_model_data:
            raise ValueError(
                "compressed_model_data: false needs the repack of a vision/text tower; remove it for kind 'task'"
            )
        if self.model_uri is not None and self.model_uri.endswith("/"):
            if self.kind is TowerKind.TASK:
                raise ValueError(
                    f"model_uri {self.model_uri!r} is a prefix, but kind 'task' deploys one "
                    "model.tar.gz as it is: point model_uri at the .tar.gz object"
                )
            if self.compressed_model_data:
                raise ValueError(
                    f"model_uri {self.model_uri!r} is a prefix (ends with '/'): set "
                    "compressed_model_data: false to serve it uncompressed, or point model_uri at "
                    "a model.tar.gz object"
                )
        if self.kind is TowerKind.TASK:
            if not self.hf_task:
                raise ValueError(
                    "kind 'task' needs hf_task (e.g. question-answering, text2text-generation)"
                )
            if self.code_dir is not None or self.main_module_name is not None:
                raise ValueError(
                    "kind 'task' runs the toolkit's pipeline: remove code_dir/main_module_name or use kind vision/text"
                )
        elif self.hf_task is not None:
            raise ValueError(f"hf_task is only for kind 'task', not {self.kind.value!r}: remove it")
        return self

    @model_validator(mode="after")
    def _paths_exist(self) -> Self:
        if self.model_path is not None:
            path = PROJECT_ROOT / self.model_path
            if not path.exists():
                raise ValueError(
                    f"model_path {self.model_path!r} does not exist (paths are relative to "
                    f"{PROJECT_ROOT}): point it at a model.tar.gz or a model folder"
                )
            if path.is_file() and not path.name.endswith((".tar.gz", ".tgz")):
                raise ValueError(
                    f"model_path {self.model_path!r} is a file but not a .tar.gz: give the "
                    "model.tar.gz or the model folder"
                )
        code_dir = self.effective_code_dir
        if code_dir is not None:
            folder = PROJECT_ROOT / code_dir
            if not folder.is_dir():
                raise ValueError(
                    f"code_dir {code_dir!r} is not a folder (paths are relative to "
                    f"{PROJECT_ROOT}): point it at the folder holding {self.entry_module}"
                )
            if not (folder / self.entry_module).is_file():
                raise ValueError(
                    f"code_dir {code_dir!r} has no {self.entry_module} (entry_module): add it, "
                    "or set entry_module to the file the toolkit should load"
                )
        return self

    @model_validator(mode="after")
    def _operations_rules(self) -> Self:
        check_operations(self)
        return self

    @property
    def invokable(self) -> bool:
        """``InvokeEndpoint`` can call it: it has an endpoint and is not asynchronous (async
        endpoints take ``InvokeEndpointAsync`` with an S3 input location instead)."""
        return self.deploy_endpoint and self.inference_mode is not InferenceMode.ASYNC

    @property
    def scaling_bounds(self) -> tuple[int, int]:
        """(min, max) instance count of the variant (see ``operations.scaling_bounds``)."""
        return scaling_bounds(self)

    @property
    def network_isolation(self) -> bool:
        """``EnableNetworkIsolation`` of the Model: ``network.enable_network_isolation`` where
        set, else on where the container needs no network: a task model, or a code tower whose
        ``requirements.txt`` installs nothing, unless the environment names a Hub model
        (``HF_MODEL_ID``, downloaded at start). Serverless endpoints support no isolation.

        Isolated containers "can't make any outbound network calls, even to other AWS services
        such as Amazon S3"; SageMaker still downloads the image and model data with the
        execution role ("Run Training and Inference Containers in Internet-Free Mode",
        docs.aws.amazon.com/sagemaker/latest/dg/mkt-algo-model-internet-free.html)."""
        configured = self.network.enable_network_isolation
        if configured is not None:
            return configured
        if self.inference_mode is InferenceMode.SERVERLESS or "HF_MODEL_ID" in self.environment:
            return False
        code_dir = self.effective_code_dir
        return code_dir is None or not installs_packages(PROJECT_ROOT / code_dir)

    @property
    def effective_code_dir(self) -> str | None:
        """The code folder to package, or None for task models."""
        if self.kind is TowerKind.TASK:
            return None
        return self.code_dir or f"model_code/{self.kind.value}"


def installs_packages(code_dir: Path) -> bool:
    """True when ``code_dir/requirements.txt`` names anything for the container to ``pip
    install`` at start (a package, ``-r`` another file, an index URL...): that needs network."""
    requirements = code_dir / "requirements.txt"
    if not requirements.is_file():
        return False
    for line in requirements.read_text(encoding="utf-8").splitlines():
        if line.split("#", 1)[0].strip():
            return True
    return False


class Artifacts(Strict):
    """The artifact bucket of the environment."""

    noncurrent_version_expiration_days: int = Field(default=30, ge=1, le=3650)
    access_log_expiration_days: int = Field(default=365, ge=1, le=3650)


class EnvironmentConfig(Strict):
    """One deployment environment: where it goes and which towers it serves."""

    project: Name = "hf-towers"
    environment: Name = Field(description="dev, staging, prod, ...")
    account: Annotated[str, StringConstraints(pattern=ACCOUNT_PATTERN)] | None = Field(
        default=None,
        description="12-digit AWS account; null synthesizes account-agnostic templates.",
    )
    region: str = Field(description="AWS region where SageMaker runs, e.g. us-east-1.")
    protected: bool = Field(
        default=False, description="Production-like: needs removal_policy retain."
    )
    removal_policy: RemovalPolicy = RemovalPolicy.RETAIN
    log_retention_days: Literal[
        1,
        3,
        5,
        7,
        14,
        30,
        60,
        90,
        120,
        150,
        180,
        365,
        400,
        545,
        731,
        1096,
        1827,
        2192,
        2557,
        2922,
        3288,
        3653,
    ] = 365
    tags: dict[
        Annotated[str, StringConstraints(min_length=1, max_length=128)],
        Annotated[str, StringConstraints(max_length=256)],
    ] = Field(default_factory=dict)
    deployer_role_names: list[Annotated[str, StringConstraints(pattern=r"^[\w+=,.@-]{1,64}$")]] = (
        Field(
            default_factory=list,
            description="Existing IAM roles that get the deployer policy attached.",
        )
    )
    artifacts: Artifacts = Field(default_factory=Artifacts)
    towers: dict[Name, Tower] = Field(min_length=1)
    shared_endpoints: dict[Name, SharedEndpoint] = Field(
        default_factory=dict,
        validate_default=True,
        description="Endpoints whose towers are inference components (README, 'Shared GPU endpoints').",
    )
    api: ApiConfig = Field(
        default_factory=ApiConfig, description="Optional REST API (README, 'API')."
    )
    training: Annotated[Training, AfterValidator(check_training_towers)] = Field(
        default_factory=Training,
        description="Optional fine-tuning pipeline and drift retraining (README, 'Model lifecycle').",
    )

    @field_validator("region")
    @classmethod
    def _real_region(cls, value: str) -> str:
        return check_region(value, "sagemaker", "SageMaker")

    @field_validator("shared_endpoints")
    @classmethod
    def _shared_towers(
        cls, shared: dict[str, SharedEndpoint], info: ValidationInfo
    ) -> dict[str, SharedEndpoint]:
        check_shared_endpoints(shared, info.data.get("towers"))
        return shared

    @field_validator("api")
    @classmethod
    def _api_towers(cls, api: ApiConfig, info: ValidationInfo) -> ApiConfig:
        check_api_towers(api, info.data.get("towers"))
        return api

    @model_validator(mode="after")
    def _protected_retains(self) -> Self:
        if self.protected and self.removal_policy is not RemovalPolicy.RETAIN:
            raise ValueError(
                "a protected environment must keep its data: set removal_policy: retain"
            )
        names = [
            self.endpoint_name(t) for t in self.towers if self.shared_endpoint_of(t) is None
        ] + [self.shared_endpoint_name(n) for n in self.shared_endpoints]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(
                f"two towers would share the endpoint name(s) {duplicates}: give each a distinct endpoint_name"
            )
        return self

    @property
    def prefix(self) -> str:
        """``<project>-<environment>``: the start of every stack and generated name."""
        return f"{self.project}-{self.environment}"

    @property
    def artifacts_stack_name(self) -> str:
        return f"{self.prefix}-artifacts"

    def tower_stack_name(self, tower: str) -> str:
        return f"{self.prefix}-tower-{tower}"

    @property
    def access_stack_name(self) -> str:
        return f"{self.prefix}-access"

    @property
    def api_stack_name(self) -> str:
        return f"{self.prefix}-api"

    @property
    def smoke_stack_name(self) -> str:
        return f"{self.prefix}-smoke"

    def endpoint_name(self, tower: str) -> str:
        """The endpoint that serves the tower: its shared endpoint's, else configured, else
        ``<project>-<environment>-<tower>``."""
        shared = self.shared_endpoint_of(tower)
        if shared is not None:
            return self.shared_endpoint_name(shared)
        configured = self.towers[tower].endpoint_name
        return configured or f"{self.prefix}-{tower}"[:63]

    @property
    def endpoint_names(self) -> list[str]:
        """Endpoint names of the towers that deploy one, then the shared endpoints, each once."""
        names = [self.endpoint_name(n) for n, t in self.towers.items() if t.deploy_endpoint]
        names += [self.shared_endpoint_name(n) for n in self.shared_endpoints]
        return list(dict.fromkeys(names))

    def shared_endpoint_of(self, tower: str) -> str | None:
        """The shared endpoint hosting ``tower`` as an inference component, or None."""
        for name, shared in self.shared_endpoints.items():
            if tower in shared.towers:
                return name
        return None

    def shared_endpoint_name(self, name: str) -> str:
        """The shared endpoint's name: configured, or ``<project>-<environment>-<name>``."""
        configured = self.shared_endpoints[name].endpoint_name
        return configured or f"{self.prefix}-{name}"[:63]

    def shared_stack_name(self, name: str) -> str:
        return f"{self.prefix}-shared-{name}"

    def inference_component_name(self, tower: str) -> str | None:
        """``<project>-<environment>-<tower>`` for a tower of a shared endpoint, else None.
        A fixed name is safe here: no property of AWS::SageMaker::InferenceComponent is
        create-only (its registry schema, shipped with cfn-lint, lists none), so no update
        replaces it, and API routes, smoke test and IAM can name it from config."""
        if self.shared_endpoint_of(tower) is None:
            return None
        return f"{self.prefix}-{tower}"[:63]

    def placed_tower(self, tower: str) -> Tower:
        """The tower's settings as deployed: a shared endpoint's tower takes its instance type
        (which picks the GPU or CPU image and the dashboard's rows)."""
        settings = self.towers[tower]
        shared = self.shared_endpoint_of(tower)
        if shared is None:
            return settings
        return settings.model_copy(
            update={"instance_type": self.shared_endpoints[shared].instance_type}
        )

    @property
    def invokable_towers(self) -> list[str]:
        """Towers ``InvokeEndpoint`` can call, in config order."""
        return [n for n, t in self.towers.items() if t.invokable]

    @property
    def api_towers(self) -> list[str]:
        """The towers the API exposes, in config order (``api.towers`` or every invokable one)."""
        if self.api.towers is None:
            return self.invokable_towers
        return [n for n in self.invokable_towers if n in self.api.towers]
