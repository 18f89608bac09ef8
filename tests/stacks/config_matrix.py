"""Configs that together set every key of the config schema (and every enum and boolean value):
the operations matrix plus two environments for the keys it does not touch.

``tests/stacks/test_config_coverage.py`` derives the key list from the pydantic models, so a new
key fails until a config here sets it, and synthesizes these environments through the four
cdk-nag packs and cfn-lint.
"""

from __future__ import annotations

import copy
from typing import Any

import yaml

from tests.stacks.operations_matrix import matrix_data
from tests.synth_helpers import REPO, default_data

EXAMPLES = REPO / "config" / "examples"
"""One copyable environment file per mode (serverless, async, blue/green, VPC, ...)."""

WAF_ARN = "arn:aws:wafv2:us-east-1:123456789012:regional/webacl/org-acl/0f0e0d0c-1111-2222-3333-444455556666"
ECR_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/towers:qa-1"

# Towers for the keys that are not operations settings.
MODEL_KEYS_TOWERS: dict[str, dict[str, Any]] = {
    # An uncompressed prefix: ModelDataSource S3Prefix (issue: its IAM5 was unacknowledged).
    "uncompressed": {
        "kind": "text",
        "model_uri": "s3://example-ml-artifacts/dual-encoder/v1/uncompressed/",
        "compressed_model_data": False,
        "instance_type": "ml.m5.xlarge",
    },
    # A local model folder (an asset), own code folder and entry module, user architecture.
    "local": {
        "kind": "vision",
        "model_path": "tests/stacks/fixtures/model",
        "code_dir": "tests/stacks/fixtures/custom_code",
        "entry_module": "serve.py",
        "main_module_name": "my_arch.towers",
        "max_decompression_ratio": 200,
        "model_version": "2026-12-01",
        "endpoint_name": "Team-Local-Vision",
        "instance_type": "ml.m5.xlarge",
        "initial_instance_count": 1,
        "environment": {"TORCH_DTYPE": "float32"},
        "transformers_version": "4.51.3",
        "pytorch_version": "2.6.0",
        "data_capture": {
            "enabled": True,
            "capture_input": True,  # drift monitoring reads the captured requests
            "json_content_types": ["application/json"],
        },
        "model_monitor": {
            "baseline_constraints_uri": "s3://example-ml-artifacts/baselines/vision/constraints.json",
            "baseline_statistics_uri": "s3://example-ml-artifacts/baselines/vision/statistics.json",
            "schedule": "cron(0 0 ? * * *)",
            "instance_type": "ml.m5.large",
            "volume_size_gb": 30,
            "max_runtime_seconds": 1800,
        },
        "autoscaling": {
            "min_capacity": 1,
            "max_capacity": 3,
            "target_invocations_per_instance": 250,
            "scale_in_cooldown_seconds": 600,
            "scale_out_cooldown_seconds": 120,
        },
        "rollout": {
            "termination_wait_seconds": 120,
            "max_execution_timeout_seconds": 7200,
        },
        "monitoring": {"period_seconds": 300, "evaluation_periods": 2},
    },
    # The custom serving image of seed 002, built by cdk deploy (a Docker image asset).
    "built": {
        "kind": "text",
        "model_uri": "s3://example-ml-artifacts/dual-encoder/v1/model.tar.gz",
        "image": "build",
        "instance_type": "ml.c5.xlarge",
    },
    # A task model from the user's own ECR image.
    "ecr": {
        "kind": "task",
        "hf_task": "question-answering",
        "model_uri": "s3://example-ml-artifacts/qa/model.tar.gz",
        "image": ECR_IMAGE,
        "instance_type": "ml.m5.xlarge",
    },
}


def protected_environment() -> dict[str, Any]:
    """A production-like environment: account, retain, API with keys, quota, WAF."""
    data = default_data()
    data.update(
        environment="prod",
        account="123456789012",
        protected=True,
        removal_policy="retain",
        log_retention_days=365,
        tags={"owner": "ml-platform"},
        deployer_role_names=["ci-deployer"],
        artifacts={"noncurrent_version_expiration_days": 60, "access_log_expiration_days": 730},
        api={
            "enabled": True,
            "auth": "api_key",
            "api_keys": ["search-app"],
            "quota": {"limit": 100000, "period": "week"},
            "throttle": {"rate_limit": 20, "burst_limit": 40},
            "stage_name": "v2",
            "towers": ["vision", "text"],
            "binary_media_types": ["image/jpeg", "application/x-npy"],
            "execution_log_level": "info",
            "waf_web_acl_arn": WAF_ARN,
            "cloudwatch_role": False,
        },
    )
    data["towers"].update(copy.deepcopy(MODEL_KEYS_TOWERS))
    # The fine-tuning pipeline, retraining on the drift of the monitored tower.
    data["training"] = {
        "enabled": True,
        "data": {
            "train_uri": "s3://example-ml-data/prod/train/",
            "validation_uri": "s3://example-ml-data/prod/validation/",
        },
        "base_model": "s3://example-ml-artifacts/dual-encoder/v1/model.tar.gz",
        "threshold": {"metric": "image_to_text_recall", "k": 5, "min_value": 0.6},
        "retrain_on_drift": {"enabled": True, "towers": ["local"], "cooldown_hours": 72},
    }
    return data


def scratch_environment() -> dict[str, Any]:
    """A throwaway environment: destroy, an IAM-auth API over every invokable tower."""
    data = default_data()
    data.update(environment="scratch", removal_policy="destroy", api={"enabled": True})
    data["towers"]["text"]["data_capture"] = {"enabled": True, "capture_input": False}
    # Training from a Hub id (network on), data in two buckets, no drift rule.
    data["training"] = {
        "enabled": True,
        "data": {
            "train_uri": "s3://example-ml-data/scratch/train/",
            "validation_uri": "s3://example-ml-holdout/scratch/",
        },
        "base_model": "openai/clip-vit-base-patch32",
        "threshold": {"metric": "text_to_image_recall"},
    }
    return data


def shared_cpu_environment() -> dict[str, Any]:
    """A CPU endpoint shared by the text tower and the task model (inference components), a
    configured name, random routing, a floor of one instance, and an API over every tower."""
    data = default_data()
    data.update(environment="sharedcpu", removal_policy="destroy", api={"enabled": True})
    data["shared_endpoints"] = {
        "cpu": {
            "towers": ["text", "qa"],
            "instance_type": "ml.m5.2xlarge",
            "endpoint_name": "Team-Shared-Cpu",
            "routing": "random",
            "initial_instance_count": 1,
            "managed_instance_scaling": {"min_instance_count": 1, "max_instance_count": 2},
        }
    }
    for name in ("text", "qa"):
        tower = data["towers"][name]
        tower.pop("instance_type", None)
        tower.pop("initial_instance_count", None)
    data["towers"]["text"]["compute"] = {"cpu_cores": 2, "min_memory_mib": 4096}
    data["towers"]["text"]["copies"] = {
        "initial": 1,
        "min": 1,
        "max": 3,
        "invocations_per_copy": 30,
    }
    data["towers"]["text"]["rollout"] = {
        "strategy": "rolling",
        "rolling_batch_percent": 34,
        "rollback_batch_percent": 100,
        "auto_rollback": False,
    }
    data["towers"]["qa"]["compute"] = {"cpu_cores": 1.5, "min_memory_mib": 2048}
    return data


def examples() -> dict[str, dict[str, Any]]:
    """``config/examples/<name>.yaml`` -> its data."""
    return {
        f"example-{path.stem}": yaml.safe_load(path.read_text())
        for path in sorted(EXAMPLES.glob("*.yaml"))
    }


def matrix() -> dict[str, dict[str, Any]]:
    """Environment name -> config data, every key of the schema set in at least one."""
    return {
        "operations": matrix_data(),
        "prod": protected_environment(),
        "scratch": scratch_environment(),
        "sharedcpu": shared_cpu_environment(),
        **examples(),
    }
