"""The fine-tuning pipeline's definition: Train -> Evaluate -> CheckRecall -> Register | Fail.

Plain Python (a dict, JSON-encoded by the construct), in the SageMaker Model Building Pipeline
definition schema (aws-sagemaker-mlops.github.io/sagemaker-model-building-pipeline-definition-JSON-schema/,
the format ``CreatePipeline`` takes; Version 2020-12-01). Each step's ``Arguments`` is the request
of the API it calls without the job name, which the pipeline generates: ``CreateTrainingJob``
(Training), ``CreateProcessingJob`` (Processing), ``CreateModelPackage`` (RegisterModel).
Values computed at run time are expressions: ``{"Get": "Steps.<step>.<property>"}``,
``{"Get": "Parameters.<name>"}``, ``{"Std:Join": ...}`` and ``{"Std:JsonGet": ...}`` on a
processing step's property file ("Pass Data Between Steps",
docs.aws.amazon.com/sagemaker/latest/dg/build-and-manage-propertyfile.html). Values may be CDK
tokens (bucket names, role ARNs); the construct resolves them with ``Stack.to_json_string``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

VERSION = "2020-12-01"
TRAIN, EVALUATE, CHECK, REGISTER, FAIL = (
    "Train",
    "Evaluate",
    "CheckRecall",
    "Register",
    "RecallBelowThreshold",
)
REPORT = "EvaluationReport"  # the property file of the Evaluate step
REPORT_OUTPUT = "evaluation"  # its processing output
REPORT_FILE = "evaluation.json"  # written by model_code/train/evaluate.py
# Where the training toolkit finds the code: a "code" channel holding the source tarball (the
# SDK's layout for network-isolated jobs, which cannot download sagemaker_submit_directory).
CODE_CHANNEL = "code"
TRAINING_INPUT = "/opt/ml/input/data"
PROCESSING = "/opt/ml/processing"
# Request and answer types of the towers (model_code/vision and model_code/text, docs/inference.md).
CONTENT_TYPES = ["application/json", "text/plain", "image/jpeg", "image/png", "image/webp"]
RESPONSE_TYPES = ["application/json", "application/x-npy"]

Expr = dict[str, Any]


def get(path: str) -> Expr:
    """``{"Get": path}``: a parameter, an execution variable or a step property."""
    return {"Get": path}


def join(*values: Any, on: str = "") -> Expr:
    """``Std:Join``: the values (expressions included) as one string, at run time."""
    return {"Std:Join": {"On": on, "Values": list(values)}}


def as_string(parameter: str) -> Expr:
    """A pipeline parameter as a string (hyperparameters are strings, as the SDK sends them)."""
    return join(get(f"Parameters.{parameter}"))


@dataclass(frozen=True)
class JobSettings:
    """Instance, volume and limits of one job."""

    instance_type: str
    volume_size_gb: int
    max_runtime_seconds: int
    volume_kms_key: str | None  # None for instance types with local NVMe storage only


@dataclass(frozen=True)
class PipelineInputs:
    """Everything the definition refers to; strings may be CDK tokens."""

    region: str
    training_image: str
    inference_image: str
    inference_instance_type: str
    job_role_arn: str
    key_arn: str
    train_uri: str
    validation_uri: str
    base_model: str  # an s3:// URI of a model.tar.gz, or a Hub id
    code_uri: str  # the source tarball (S3 asset), s3://bucket/<key>.tar.gz
    code_key: str  # its object key (no slashes)
    output_uri: str  # s3://<artifact bucket>/<prefix>: models/ and evaluation/ below it
    package_group: str
    metric_json_path: str
    min_value: float
    epochs: int
    learning_rate: float
    batch_size: int
    training: JobSettings
    evaluation: JobSettings
    network_isolation: bool

    @property
    def base_model_in_s3(self) -> bool:
        return self.base_model.startswith("s3://")


def parameters(inputs: PipelineInputs) -> list[dict[str, Any]]:
    """Values an execution may override (``StartPipelineExecution``'s ``PipelineParameters``)."""
    return [
        {"Name": "Epochs", "Type": "Integer", "DefaultValue": inputs.epochs},
        {"Name": "LearningRate", "Type": "Float", "DefaultValue": inputs.learning_rate},
        {"Name": "BatchSize", "Type": "Integer", "DefaultValue": inputs.batch_size},
        {"Name": "MinRecall", "Type": "Float", "DefaultValue": inputs.min_value},
    ]


def _channel(name: str, uri: str) -> dict[str, Any]:
    return {
        "ChannelName": name,
        "DataSource": {
            "S3DataSource": {
                "S3DataType": "S3Prefix",
                "S3Uri": uri,
                "S3DataDistributionType": "FullyReplicated",
            }
        },
    }


def _resources(job: JobSettings) -> dict[str, Any]:
    resources: dict[str, Any] = {
        "InstanceCount": 1,
        "InstanceType": job.instance_type,
        "VolumeSizeInGB": job.volume_size_gb,
    }
    if job.volume_kms_key is not None:
        resources["VolumeKmsKeyId"] = job.volume_kms_key
    return resources


def training_step(inputs: PipelineInputs) -> dict[str, Any]:
    """``CreateTrainingJob``: model_code/train/train.py in the Hugging Face training image."""
    channels = [
        _channel("train", inputs.train_uri),
        _channel("validation", inputs.validation_uri),
        _channel(CODE_CHANNEL, inputs.code_uri),
    ]
    # The training toolkit passes hyperparameters to the script as --name value, JSON-decoded;
    # sagemaker_* ones are its own (the script, where the code is, the region).
    hyperparameters: dict[str, Any] = {
        "epochs": as_string("Epochs"),
        "learning_rate": as_string("LearningRate"),
        "batch_size": as_string("BatchSize"),
        "sagemaker_program": json.dumps("train.py"),
        "sagemaker_submit_directory": json.dumps(
            f"{TRAINING_INPUT}/{CODE_CHANNEL}/{inputs.code_key}"
        ),
        "sagemaker_region": json.dumps(inputs.region),
        "sagemaker_container_log_level": "20",
    }
    if inputs.base_model_in_s3:
        channels.append(_channel("model", inputs.base_model))  # SM_CHANNEL_MODEL
    else:
        hyperparameters["base_model"] = json.dumps(inputs.base_model)
    return {
        "Name": TRAIN,
        "Type": "Training",
        "Arguments": {
            "AlgorithmSpecification": {
                "TrainingImage": inputs.training_image,
                "TrainingInputMode": "File",
                # train.py prints these lines; SageMaker turns them into job metrics.
                "MetricDefinitions": [
                    {"Name": "train:loss", "Regex": r"train_loss=([0-9.eE+-]+)"},
                    {
                        "Name": "validation:recall_at_1",
                        "Regex": r"validation_recall_at_1=([0-9.]+)",
                    },
                ],
            },
            "HyperParameters": hyperparameters,
            "InputDataConfig": channels,
            "OutputDataConfig": {
                "S3OutputPath": f"{inputs.output_uri}/models",
                "KmsKeyId": inputs.key_arn,
            },
            "ResourceConfig": _resources(inputs.training),
            "StoppingCondition": {"MaxRuntimeInSeconds": inputs.training.max_runtime_seconds},
            "RoleArn": inputs.job_role_arn,
            "EnableNetworkIsolation": inputs.network_isolation,
            "EnableInterContainerTrafficEncryption": True,
        },
    }


def _processing_input(name: str, uri: Any, local: str) -> dict[str, Any]:
    return {
        "InputName": name,
        "AppManaged": False,
        "S3Input": {
            "S3Uri": uri,
            "LocalPath": local,
            "S3DataType": "S3Prefix",
            "S3InputMode": "File",
            "S3DataDistributionType": "FullyReplicated",
            "S3CompressionType": "None",
        },
    }


def evaluation_step(inputs: PipelineInputs) -> dict[str, Any]:
    """``CreateProcessingJob``: model_code/train/evaluate.py on the trained model."""
    code = f"{PROCESSING}/input/code"
    # The job gets the source tarball as an input; unpack it and run evaluate.py with its
    # defaults, which are these paths.
    command = (
        f"set -e; mkdir -p /tmp/code; tar -xzf {code}/{inputs.code_key} -C /tmp/code; "
        "exec python3 /tmp/code/evaluate.py"
    )
    return {
        "Name": EVALUATE,
        "Type": "Processing",
        "Arguments": {
            "ProcessingResources": {"ClusterConfig": _resources(inputs.evaluation)},
            "AppSpecification": {
                "ImageUri": inputs.training_image,
                "ContainerEntrypoint": ["/bin/bash", "-c", command],
            },
            "RoleArn": inputs.job_role_arn,
            "ProcessingInputs": [
                _processing_input(
                    "model",
                    get(f"Steps.{TRAIN}.ModelArtifacts.S3ModelArtifacts"),
                    f"{PROCESSING}/model",
                ),
                _processing_input("validation", inputs.validation_uri, f"{PROCESSING}/validation"),
                _processing_input(CODE_CHANNEL, inputs.code_uri, code),
            ],
            "ProcessingOutputConfig": {
                "Outputs": [
                    {
                        "OutputName": REPORT_OUTPUT,
                        "AppManaged": False,
                        "S3Output": {
                            "S3Uri": join(
                                f"{inputs.output_uri}/evaluation",
                                get("Execution.PipelineExecutionId"),
                                on="/",
                            ),
                            "LocalPath": f"{PROCESSING}/evaluation",
                            "S3UploadMode": "EndOfJob",
                        },
                    }
                ],
                "KmsKeyId": inputs.key_arn,
            },
            "StoppingCondition": {"MaxRuntimeInSeconds": inputs.evaluation.max_runtime_seconds},
            "NetworkConfig": {
                "EnableNetworkIsolation": True,
                "EnableInterContainerTrafficEncryption": True,
            },
        },
        "PropertyFiles": [
            {"PropertyFileName": REPORT, "OutputName": REPORT_OUTPUT, "FilePath": REPORT_FILE}
        ],
    }


def report_uri() -> Expr:
    """The S3 URI of ``evaluation.json`` of this execution."""
    output = get(
        f"Steps.{EVALUATE}.ProcessingOutputConfig.Outputs['{REPORT_OUTPUT}'].S3Output.S3Uri"
    )
    return join(output, REPORT_FILE, on="/")


def register_step(inputs: PipelineInputs) -> dict[str, Any]:
    """``CreateModelPackage`` in the group, pending a person's approval, with the metrics."""
    return {
        "Name": REGISTER,
        "Type": "RegisterModel",
        "Arguments": {
            "ModelPackageGroupName": inputs.package_group,
            "ModelPackageDescription": join(
                "Fine-tuned by pipeline execution ", get("Execution.PipelineExecutionArn")
            ),
            "ModelApprovalStatus": "PendingManualApproval",
            "InferenceSpecification": {
                "Containers": [
                    {
                        "Image": inputs.inference_image,
                        "ModelDataUrl": get(f"Steps.{TRAIN}.ModelArtifacts.S3ModelArtifacts"),
                    }
                ],
                "SupportedContentTypes": CONTENT_TYPES,
                "SupportedResponseMIMETypes": RESPONSE_TYPES,
                "SupportedRealtimeInferenceInstanceTypes": [inputs.inference_instance_type],
            },
            "ModelMetrics": {
                "ModelQuality": {
                    "Statistics": {"ContentType": "application/json", "S3Uri": report_uri()}
                }
            },
            "CustomerMetadataProperties": {
                "metric": inputs.metric_json_path,
                "training_job": get(f"Steps.{TRAIN}.TrainingJobName"),
            },
        },
    }


def condition_step(inputs: PipelineInputs) -> dict[str, Any]:
    """Register when the configured recall reaches ``MinRecall``; else fail the execution."""
    recall = {
        "Std:JsonGet": {
            "PropertyFile": get(f"Steps.{EVALUATE}.PropertyFiles.{REPORT}"),
            "Path": inputs.metric_json_path,
        }
    }
    fail = {
        "Name": FAIL,
        "Type": "Fail",
        "Arguments": {
            "ErrorMessage": join(
                f"{inputs.metric_json_path} is below MinRecall ",
                get("Parameters.MinRecall"),
                ": the model was not registered",
            )
        },
    }
    return {
        "Name": CHECK,
        "Type": "Condition",
        "Arguments": {
            "Conditions": [
                {
                    "Type": "GreaterThanOrEqualTo",
                    "LeftValue": recall,
                    "RightValue": get("Parameters.MinRecall"),
                }
            ],
            "IfSteps": [register_step(inputs)],
            "ElseSteps": [fail],
        },
    }


def pipeline_definition(inputs: PipelineInputs) -> dict[str, Any]:
    """The whole definition. Step order follows from the data dependencies (the Evaluate step
    reads the Train step's artifacts; the condition reads the Evaluate step's report)."""
    return {
        "Version": VERSION,
        "Metadata": {},
        "Parameters": parameters(inputs),
        "Steps": [training_step(inputs), evaluation_step(inputs), condition_step(inputs)],
    }
