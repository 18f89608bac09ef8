"""Data capture of a tower's requests and responses (the EndpointConfig's ``DataCaptureConfig``)."""

from __future__ import annotations

from aws_cdk import aws_sagemaker as sagemaker

from hf_towers.config.operations import DataCapture
from hf_towers.constructs.s3_location import S3Prefix

Cfn = sagemaker.CfnEndpointConfig


def default_capture_prefix(tower_name: str) -> str:
    """Where a tower's captures go in the artifact bucket unless ``data_capture.prefix`` says."""
    return f"data-capture/{tower_name}"


def data_capture_config(
    settings: DataCapture, *, destination: S3Prefix, key_arn: str
) -> Cfn.DataCaptureConfigProperty:
    """Sampled requests/responses to ``destination``, SSE-KMS with ``key_arn``.

    SageMaker writes them with the tower's execution role, which gets ``s3:PutObject`` on
    exactly ``destination`` and ``kms:GenerateDataKey`` on the key (``ExecutionRole``).
    """
    options = [
        Cfn.CaptureOptionProperty(capture_mode=mode)
        for mode, wanted in (("Input", settings.capture_input), ("Output", settings.capture_output))
        if wanted
    ]
    return Cfn.DataCaptureConfigProperty(
        enable_capture=True,
        initial_sampling_percentage=settings.sampling_percentage,
        destination_s3_uri=destination.uri,
        kms_key_id=key_arn,
        capture_options=options,
        capture_content_type_header=Cfn.CaptureContentTypeHeaderProperty(
            json_content_types=list(settings.json_content_types)
        )
        if settings.json_content_types
        else None,
    )
