"""``ServingImage``: the custom serving container (Dockerfile next to this module) as an ECR asset.

A tower stack instantiates it for a tower whose config says ``image: build``. Creating it only
fingerprints the build context at synth; the image is built when the asset is published
(``cdk deploy``), which needs Docker. Nothing else in the app needs Docker.

The image: ``python:3.11.13-slim-bookworm`` (pinned tag), nginx on :8080 in front of
multi-model-server on 127.0.0.1:8081, started by ``start_model_server.py``: workers chosen per
machine (``SAGEMAKER_MODEL_SERVER_WORKERS`` overrides), concurrent requests batched
(``MODEL_SERVER_BATCH_SIZE``, ``MODEL_SERVER_MAX_BATCH_DELAY_MS``), the Hugging Face inference
toolkit and both towers' handlers (``model_code/``). ``TOWER`` (vision
or text) picks the baked handler when the model artifact has no ``code/`` of its own. The image
is CPU-only (torch's CPU wheel); GPU towers use the AWS Hugging Face inference container, which
runs the same handlers unchanged.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import IgnoreMode
from aws_cdk import aws_ecr_assets as ecr_assets
from constructs import Construct

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
DOCKERFILE = HERE.relative_to(REPO) / "Dockerfile"
# The build context is the repository root minus everything but what the Dockerfile copies.
CONTEXT_EXCLUDE = [
    "*",
    "!model_code/vision/**",
    "!model_code/text/**",
    f"!{HERE.relative_to(REPO).as_posix()}/**",
    "**/__pycache__",
    "**/*.pyc",
]


class ServingImage(Construct):
    """The serving image as a ``DockerImageAsset`` (linux/amd64); ``image_uri`` for a Model."""

    def __init__(self, scope: Construct, id_: str) -> None:
        super().__init__(scope, id_)
        self.asset = ecr_assets.DockerImageAsset(
            self,
            "Asset",
            directory=str(REPO),
            file=DOCKERFILE.as_posix(),
            exclude=CONTEXT_EXCLUDE,
            ignore_mode=IgnoreMode.DOCKER,
            platform=ecr_assets.Platform.LINUX_AMD64,
        )

    @property
    def image_uri(self) -> str:
        """The image's URI in the CDK assets repository."""
        return self.asset.image_uri
