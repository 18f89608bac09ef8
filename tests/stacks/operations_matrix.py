"""One config holding every valid combination of the operations settings (one App, many towers).

Synthesizing one App per combination would cost ~4-8 s of jsii each; one App with a tower per
combination covers the same templates in one synth.
"""

from __future__ import annotations

from typing import Any

from tests.synth_helpers import default_data

BASELINE = "s3://example-ml-artifacts/baselines/text"
KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"
SUBNETS = ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"]
GROUPS = ["sg-0123456789abcdef0"]

# tower name -> its operations keys (on top of a CPU or GPU base tower).
MATRIX: dict[str, dict[str, Any]] = {
    # real-time, blue/green canary, captures + drift monitor, VPC + isolation, autoscaling 4..8
    # (a 25 % canary needs at least 4 instances to be one instance)
    "rt-canary": {
        "instance_type": "ml.m5.xlarge",
        "initial_instance_count": 4,
        "rollout": {"traffic": "canary", "canary_percent": 25, "wait_interval_seconds": 600},
        "data_capture": {"enabled": True, "sampling_percentage": 50},
        "model_monitor": {
            "baseline_constraints_uri": f"{BASELINE}/constraints.json",
            "baseline_statistics_uri": f"{BASELINE}/statistics.json",
        },
        "network": {
            "subnet_ids": SUBNETS,
            "security_group_ids": GROUPS,
            "enable_network_isolation": True,
        },
        "autoscaling": {"min_capacity": 4, "max_capacity": 8},
        "monitoring": {"error_5xx_threshold": 10, "latency_p99_ms": 500},
    },
    # real-time GPU (instance storage), linear shift of 50 % steps (2 instances), captures of
    # requests only, network isolation explicitly off (the opt-out)
    "rt-linear": {
        "instance_type": "ml.g5.xlarge",
        "initial_instance_count": 2,
        "rollout": {"traffic": "linear", "linear_step_percent": 50},
        "network": {"enable_network_isolation": False},
        "data_capture": {"enabled": True, "capture_output": False, "prefix": "captures/linear"},
    },
    # real-time rolling batches, no autoscaling, no alarms, no dashboard, no rollback
    "rt-rolling": {
        "instance_type": "ml.c5.xlarge",
        "initial_instance_count": 2,
        "rollout": {
            "strategy": "rolling",
            "rolling_batch_percent": 50,
            "rollback_batch_percent": 100,
            "auto_rollback": False,
        },
        "autoscaling": {"enabled": False},
        "monitoring": {"alarms": False, "dashboard": False},
    },
    # serverless with provisioned concurrency, blue/green all at once
    "sls": {
        "instance_type": "ml.m5.large",
        "inference_mode": "serverless",
        "serverless": {"memory_size_mb": 4096, "max_concurrency": 20, "provisioned_concurrency": 2},
    },
    # serverless, canary shift, defaults otherwise
    "sls-canary": {
        "instance_type": "ml.m5.large",
        "inference_mode": "serverless",
        "rollout": {"traffic": "canary"},
    },
    # async in the artifact bucket, scale to zero, notifications
    "async-zero": {
        "instance_type": "ml.g5.xlarge",
        "inference_mode": "async",
        "async_inference": {
            "output_prefix": "async/zero/output",
            "max_concurrent_invocations_per_instance": 4,
        },
        "autoscaling": {"min_capacity": 0, "max_capacity": 3, "target_backlog_per_instance": 10},
        "initial_instance_count": 1,
    },
    # async in a dedicated bucket with its own key, no topics, captures on
    "async-bucket": {
        "instance_type": "ml.m5.xlarge",
        "inference_mode": "async",
        "async_inference": {
            "output_prefix": "results",
            "failure_prefix": "failed",
            "input_prefix": "requests",
            "bucket": "team-async-results",
            "kms_key_arn": KEY_ARN,
            "notifications": False,
        },
        "data_capture": {"enabled": True},
    },
    # model only: operations keys are accepted and nothing after the Model is created
    "model-only": {"instance_type": "ml.m5.xlarge", "deploy_endpoint": False},
}


def matrix_data() -> dict[str, Any]:
    """The default config's environment with one text tower per MATRIX entry."""
    data = default_data()
    base = dict(data["towers"]["text"])
    data["towers"] = {name: {**base, **keys} for name, keys in MATRIX.items()}
    return data


def stack_name(tower: str) -> str:
    return f"hf-towers-dev-tower-{tower}"
