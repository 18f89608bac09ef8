"""Operations of tower stacks: every valid combination in one App, nag packs and cfn-lint clean,
and fine-grained assertions per mode and option (templates read from the synthesized assembly)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from hf_towers.tools.synth_check import check, templates
from tests.stacks.operations_matrix import GROUPS, KEY_ARN, MATRIX, SUBNETS, matrix_data, stack_name
from tests.synth_helpers import (
    assert_packs_pass,
    build,
    declared_acknowledgements,
    used_acknowledgements,
)

VISION = "hf-towers-dev-tower-vision"


@pytest.fixture(scope="module")
def assembly(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], set[Any]]:
    """Synthesize the whole matrix once, with the four nag packs."""
    outdir = tmp_path_factory.mktemp("operations")
    app, _ = build(matrix_data(), nag=True, outdir=outdir)
    app.synth()
    report = json.loads((outdir / "validation-report.json").read_text())
    declared = declared_acknowledgements(app)
    return outdir, report, declared


@pytest.fixture(scope="module")
def tpl(assembly: tuple[Path, dict[str, Any], set[Any]]) -> dict[str, Template]:
    outdir = assembly[0]
    return {
        name: Template.from_json(json.loads(path.read_text()))
        for name, path in templates(outdir).items()
    }


def _one(template: Template, resource_type: str) -> dict[str, Any]:
    found = template.find_resources(resource_type)
    assert len(found) == 1, f"expected one {resource_type}, found {len(found)}"
    (resource,) = found.values()
    return dict(resource)


def _props(template: Template, resource_type: str) -> dict[str, Any]:
    props: dict[str, Any] = _one(template, resource_type)["Properties"]
    return props


def _statements(template: Template) -> dict[str, dict[str, Any]]:
    """Statements of the execution role's policy."""
    (policy,) = [
        p["Properties"]
        for k, p in template.find_resources("AWS::IAM::ManagedPolicy").items()
        if k.startswith("ExecutionRole")
    ]
    return {s.get("Sid", "model-data"): s for s in policy["PolicyDocument"]["Statement"]}


def test_every_combination_passes_all_packs_and_cfn_lint(
    assembly: tuple[Path, dict[str, Any], set[Any]],
) -> None:
    outdir, report, declared = assembly
    assert_packs_pass(report)
    used = used_acknowledgements(report)
    assert declared - used == set(), "acknowledgements that match no finding: remove them"
    reports = check(outdir)
    assert {r.name for r in reports} >= {stack_name(t) for t in MATRIX}
    for stack in reports:
        assert (stack.name, stack.lint_errors, stack.lint_warnings) == (stack.name, 0, 0)


def test_canary_rollout_rolls_back_on_the_stacks_alarms(tpl: dict[str, Template]) -> None:
    t = tpl[stack_name("rt-canary")]
    alarms = t.find_resources("AWS::CloudWatch::Alarm")
    assert len(alarms) == 2
    config = _props(t, "AWS::SageMaker::Endpoint")["DeploymentConfig"]
    assert config["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"] == {
        "Type": "CANARY",
        "WaitIntervalInSeconds": 600,
        "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 25},
    }
    assert sorted(
        a["AlarmName"]["Ref"] for a in config["AutoRollbackConfiguration"]["Alarms"]
    ) == sorted(alarms)
    t.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "MetricName": "Invocation5XXErrors",
            "Namespace": "AWS/SageMaker",
            "Statistic": "Sum",
            "Threshold": 10,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "Dimensions": Match.array_with(
                [{"Name": "EndpointName", "Value": "hf-towers-dev-rt-canary"}]
            ),
            "AlarmActions": [{"Ref": Match.string_like_regexp("AlarmTopic")}],
        },
    )
    t.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {"MetricName": "ModelLatency", "ExtendedStatistic": "p99", "Threshold": 500_000},
    )


def test_linear_and_rolling_rollouts(tpl: dict[str, Template]) -> None:
    linear = _props(tpl[stack_name("rt-linear")], "AWS::SageMaker::Endpoint")["DeploymentConfig"]
    routing = linear["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert routing["Type"] == "LINEAR"
    assert routing["LinearStepSize"] == {"Type": "CAPACITY_PERCENT", "Value": 50}
    rolling_t = tpl[stack_name("rt-rolling")]
    rolling = _props(rolling_t, "AWS::SageMaker::Endpoint")["DeploymentConfig"]
    assert rolling == {
        "RollingUpdatePolicy": {
            "MaximumBatchSize": {"Type": "CAPACITY_PERCENT", "Value": 50},
            "RollbackMaximumBatchSize": {"Type": "CAPACITY_PERCENT", "Value": 100},
            "WaitIntervalInSeconds": 300,
            "MaximumExecutionTimeoutInSeconds": 3600,
        }
    }
    # alarms, dashboard and autoscaling off: none of their resources
    for absent in (
        "AWS::CloudWatch::Alarm",
        "AWS::SNS::Topic",
        "AWS::CloudWatch::Dashboard",
        "AWS::ApplicationAutoScaling::ScalableTarget",
    ):
        rolling_t.resource_count_is(absent, 0)


def test_realtime_target_tracking_on_invocations_per_instance(tpl: dict[str, Template]) -> None:
    t = tpl[stack_name("rt-canary")]
    target = _props(t, "AWS::ApplicationAutoScaling::ScalableTarget")
    assert target["ResourceId"] == "endpoint/hf-towers-dev-rt-canary/variant/AllTraffic"
    assert target["ScalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
    assert (target["MinCapacity"], target["MaxCapacity"]) == (4, 8)
    assert "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint" in json.dumps(
        target["RoleARN"]
    )
    t.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        {
            "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": {
                "PredefinedMetricSpecification": {
                    "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
                },
                "TargetValue": 100,
                "ScaleInCooldown": 300,
                "ScaleOutCooldown": 60,
            },
        },
    )
    # the target is registered only after the endpoint (its variant) exists
    (target_resource,) = t.find_resources("AWS::ApplicationAutoScaling::ScalableTarget").values()
    assert "EndpointEEF1FD8F" in target_resource["DependsOn"]


def test_async_scales_on_backlog_to_zero_and_back_out(tpl: dict[str, Template]) -> None:
    t = tpl[stack_name("async-zero")]
    target = _props(t, "AWS::ApplicationAutoScaling::ScalableTarget")
    assert (target["MinCapacity"], target["MaxCapacity"]) == (0, 3)
    t.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        {
            "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": Match.object_like(
                {
                    "CustomizedMetricSpecification": {
                        "MetricName": "ApproximateBacklogSizePerInstance",
                        "Namespace": "AWS/SageMaker",
                        "Statistic": "Average",
                        "Dimensions": [
                            {"Name": "EndpointName", "Value": "hf-towers-dev-async-zero"}
                        ],
                    },
                    "TargetValue": 10,
                }
            ),
        },
    )
    steps = t.find_resources(
        "AWS::ApplicationAutoScaling::ScalingPolicy", {"Properties": {"PolicyType": "StepScaling"}}
    )
    (step_id,) = steps
    assert steps[step_id]["Properties"]["StepScalingPolicyConfiguration"]["StepAdjustments"] == [
        {"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}
    ]
    t.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "MetricName": "HasBacklogWithoutCapacity",
            "Threshold": 1,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "AlarmActions": [{"Ref": step_id}],
        },
    )
    # min 1: no scale-out-from-zero policy
    assert not tpl[stack_name("async-bucket")].find_resources(
        "AWS::ApplicationAutoScaling::ScalingPolicy", {"Properties": {"PolicyType": "StepScaling"}}
    )


def test_async_outputs_kms_and_topics_in_the_artifact_bucket(tpl: dict[str, Template]) -> None:
    t = tpl[stack_name("async-zero")]
    config = _props(t, "AWS::SageMaker::EndpointConfig")["AsyncInferenceConfig"]
    assert config["ClientConfig"] == {"MaxConcurrentInvocationsPerInstance": 4}
    output = config["OutputConfig"]
    assert output["S3OutputPath"]["Fn::Join"][1][-1] == "/async/zero/output"
    assert output["S3FailurePath"]["Fn::Join"][1][-1] == "/async/zero/output-failures"
    assert list(output["KmsKeyId"]) == ["Fn::ImportValue"]
    topics = t.find_resources("AWS::SNS::Topic")
    async_topics = {k for k in topics if k.startswith("AsyncInference")}
    assert {
        output["NotificationConfig"]["SuccessTopic"]["Ref"],
        output["NotificationConfig"]["ErrorTopic"]["Ref"],
    } == async_topics
    for key in async_topics:
        assert list(topics[key]["Properties"]["KmsMasterKeyId"]) == ["Fn::ImportValue"]
    statements = _statements(t)
    assert statements["PublishAsyncNotifications"]["Action"] == "sns:Publish"
    assert sorted(r["Ref"] for r in statements["PublishAsyncNotifications"]["Resource"]) == sorted(
        async_topics
    )
    writes = [r["Fn::Join"][1] for r in statements["WriteCapturesAndResults"]["Resource"]]
    assert sorted(w[1] for w in writes) == ["/async/zero/output-failures/*", "/async/zero/output/*"]
    assert all(
        w[0] == {"Fn::ImportValue": "hf-towers-dev-artifacts:ArtifactBucketArn"} for w in writes
    )
    assert (
        statements["ReadAsyncRequests"]["Resource"]["Fn::Join"][1][1]
        == "/async/zero/output-requests/*"
    )
    assert statements["EncryptCapturesAndResults"]["Action"] == [
        "kms:Encrypt",
        "kms:GenerateDataKey",
    ]


def test_async_in_a_dedicated_bucket_with_its_own_key(tpl: dict[str, Template]) -> None:
    t = tpl[stack_name("async-bucket")]
    output = _props(t, "AWS::SageMaker::EndpointConfig")["AsyncInferenceConfig"]["OutputConfig"]
    assert output["KmsKeyId"] == KEY_ARN
    assert "NotificationConfig" not in output
    assert "ClientConfig" not in _props(t, "AWS::SageMaker::EndpointConfig")["AsyncInferenceConfig"]
    statements = _statements(t)
    assert "PublishAsyncNotifications" not in statements
    assert sorted(statements["WriteCapturesAndResults"]["Resource"][:2]) == [
        "arn:aws:s3:::team-async-results/failed/*",
        "arn:aws:s3:::team-async-results/results/*",
    ]
    assert (
        statements["ReadAsyncRequests"]["Resource"] == "arn:aws:s3:::team-async-results/requests/*"
    )
    keys = statements["EncryptCapturesAndResults"]["Resource"]
    assert KEY_ARN in keys and len(keys) == 2  # the environment key (captures) and the team's key
    dashboard = json.dumps(_props(t, "AWS::CloudWatch::Dashboard"))
    assert "ApproximateBacklogSize" in dashboard


def test_serverless_variant_has_no_instances_and_no_scaling(tpl: dict[str, Template]) -> None:
    t = tpl[stack_name("sls")]
    config = _props(t, "AWS::SageMaker::EndpointConfig")
    (variant,) = config["ProductionVariants"]
    assert variant["ServerlessConfig"] == {
        "MemorySizeInMB": 4096,
        "MaxConcurrency": 20,
        "ProvisionedConcurrency": 2,
    }
    assert "InstanceType" not in variant and "InitialInstanceCount" not in variant
    assert list(config["KmsKeyId"]) == ["Fn::ImportValue"]  # serverless takes the key too
    t.resource_count_is("AWS::ApplicationAutoScaling::ScalableTarget", 0)
    assert "CPUUtilization" not in json.dumps(_props(t, "AWS::CloudWatch::Dashboard"))
    canary = _props(tpl[stack_name("sls-canary")], "AWS::SageMaker::Endpoint")["DeploymentConfig"]
    assert canary["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["Type"] == "CANARY"


def test_data_capture_to_the_towers_prefix_with_kms(tpl: dict[str, Template]) -> None:
    t = tpl[stack_name("rt-canary")]
    capture = _props(t, "AWS::SageMaker::EndpointConfig")["DataCaptureConfig"]
    assert capture["EnableCapture"] is True
    assert capture["InitialSamplingPercentage"] == 50
    assert capture["CaptureOptions"] == [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}]
    assert capture["CaptureContentTypeHeader"] == {"JsonContentTypes": ["application/json"]}
    assert capture["DestinationS3Uri"]["Fn::Join"][1][-1] == "/data-capture/rt-canary"
    assert list(capture["KmsKeyId"]) == ["Fn::ImportValue"]
    writes = _statements(t)["WriteCapturesAndResults"]["Resource"]
    assert writes["Fn::Join"][1][1] == "/data-capture/rt-canary/*"
    linear = _props(tpl[stack_name("rt-linear")], "AWS::SageMaker::EndpointConfig")
    assert linear["DataCaptureConfig"]["CaptureOptions"] == [{"CaptureMode": "Input"}]
    assert linear["DataCaptureConfig"]["DestinationS3Uri"]["Fn::Join"][1][-1] == "/captures/linear"
    assert "KmsKeyId" not in linear  # ml.g5: instance storage, hardware-encrypted


def test_model_monitor_schedule_and_its_own_least_privilege_role(tpl: dict[str, Template]) -> None:
    t = tpl[stack_name("rt-canary")]
    job = _props(t, "AWS::SageMaker::DataQualityJobDefinition")
    assert job["DataQualityAppSpecification"]["ImageUri"] == (
        "156813124566.dkr.ecr.us-east-1.amazonaws.com/sagemaker-model-monitor-analyzer"
    )
    assert job["DataQualityBaselineConfig"] == {
        "ConstraintsResource": {
            "S3Uri": "s3://example-ml-artifacts/baselines/text/constraints.json"
        },
        "StatisticsResource": {"S3Uri": "s3://example-ml-artifacts/baselines/text/statistics.json"},
    }
    assert job["DataQualityJobInput"]["EndpointInput"]["EndpointName"] == "hf-towers-dev-rt-canary"
    for resource in (
        t.find_resources("AWS::SageMaker::DataQualityJobDefinition"),
        t.find_resources("AWS::SageMaker::MonitoringSchedule"),
    ):
        assert "EndpointEEF1FD8F" in next(iter(resource.values()))["DependsOn"]
    assert list(job["JobResources"]["ClusterConfig"]["VolumeKmsKeyId"]) == ["Fn::ImportValue"]
    assert job["JobDefinitionName"].startswith("hf-towers-dev-rt-canary-dq-")
    schedule = _props(t, "AWS::SageMaker::MonitoringSchedule")
    assert schedule["MonitoringScheduleConfig"] == {
        "MonitoringJobDefinitionName": job["JobDefinitionName"],
        "MonitoringType": "DataQuality",
        "ScheduleConfig": {"ScheduleExpression": "cron(0 * ? * * *)"},
    }
    policies = t.find_resources("AWS::IAM::ManagedPolicy")
    (monitor_policy,) = [p for k, p in policies.items() if k.startswith("DataQualityMonitor")]
    sids = {s["Sid"]: s for s in monitor_policy["Properties"]["PolicyDocument"]["Statement"]}
    assert sids["ReadCaptures"]["Resource"]["Fn::Join"][1][1] == "/data-capture/rt-canary/*"
    assert sids["WriteReports"]["Resource"]["Fn::Join"][1][1] == "/model-monitor/rt-canary/*"
    assert sorted(sids["ReadBaselines"]["Resource"]) == [
        "arn:aws:s3:::example-ml-artifacts/baselines/text/constraints.json",
        "arn:aws:s3:::example-ml-artifacts/baselines/text/statistics.json",
    ]
    wildcard = sorted(sid for sid, s in sids.items() if s["Resource"] == "*")
    assert wildcard == ["EcrLogin", "PutDriftMetrics"]


def test_vpc_and_network_isolation_on_the_model(tpl: dict[str, Template]) -> None:
    t = tpl[stack_name("rt-canary")]
    model = _props(t, "AWS::SageMaker::Model")
    assert model["VpcConfig"] == {"Subnets": SUBNETS, "SecurityGroupIds": GROUPS}
    assert model["EnableNetworkIsolation"] is True
    t.resource_count_is("AWS::EC2::VPC", 0)
    statements = _statements(t)
    assert statements["DescribeNetwork"]["Resource"] == "*"
    enis = statements["ManageNetworkInterfaces"]["Resource"]
    assert any("network-interface/*" in json.dumps(r) for r in enis)
    assert sum(SUBNETS[0] in json.dumps(r) or GROUPS[0] in json.dumps(r) for r in enis) == 2
    plain = _props(tpl[stack_name("rt-linear")], "AWS::SageMaker::Model")
    # network.enable_network_isolation: false, the opt-out of the default
    assert "VpcConfig" not in plain and "EnableNetworkIsolation" not in plain


def test_alarm_topic_is_kms_encrypted_tls_only_and_cloudwatch_may_publish(
    tpl: dict[str, Template],
) -> None:
    t = tpl[stack_name("rt-canary")]
    topic_id, topic = next(
        (k, r) for k, r in t.find_resources("AWS::SNS::Topic").items() if k.startswith("AlarmTopic")
    )
    key_ref = topic["Properties"]["KmsMasterKeyId"]
    assert key_ref == {"Fn::GetAtt": [Match.any_value(), "Arn"]} or "Fn::GetAtt" in key_ref
    key = t.find_resources("AWS::KMS::Key")[key_ref["Fn::GetAtt"][0]]["Properties"]
    assert key["EnableKeyRotation"] is True
    cw = [
        s for s in key["KeyPolicy"]["Statement"] if s.get("Sid") == "AllowCloudWatchAlarmsToPublish"
    ]
    assert cw[0]["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    (policy,) = t.find_resources("AWS::SNS::TopicPolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for s in statements
    )
    assert any(s.get("Sid") == "AllowAlarmsOfThisAccount" for s in statements)
    assert {"Ref": topic_id} in policy["Properties"]["Topics"]


def test_dashboard_shows_latency_errors_and_gpu_utilisation(tpl: dict[str, Template]) -> None:
    gpu = json.dumps(_props(tpl[stack_name("rt-linear")], "AWS::CloudWatch::Dashboard"))
    for metric in (
        "Invocations",
        "ModelLatency",
        "OverheadLatency",
        "Invocation4XXErrors",
        "Invocation5XXErrors",
        "CPUUtilization",
        "MemoryUtilization",
        "DiskUtilization",
        "GPUUtilization",
        "/aws/sagemaker/Endpoints",
        "p50",
        "p90",
        "p99",
    ):
        assert metric in gpu, metric
    cpu = json.dumps(_props(tpl[stack_name("rt-canary")], "AWS::CloudWatch::Dashboard"))
    assert "GPUUtilization" not in cpu and "ApproximateBacklogSize" not in cpu


def test_model_only_tower_ignores_operations(tpl: dict[str, Template]) -> None:
    t = tpl[stack_name("model-only")]
    types = {r["Type"] for r in t.to_json()["Resources"].values()}
    assert "AWS::SageMaker::Model" in types
    # Nothing of the endpoint side: no endpoint, scaling, alarms, dashboard, topics, monitor.
    assert not {
        ty
        for ty in types
        if ty.startswith(
            (
                "AWS::SageMaker::Endpoint",
                "AWS::SageMaker::Monitoring",
                "AWS::ApplicationAutoScaling",
                "AWS::CloudWatch",
                "AWS::SNS",
            )
        )
    }


def test_default_towers_get_autoscaling_alarms_dashboard_and_blue_green(
    default_templates: dict[str, Any],
) -> None:
    t = Template.from_json(default_templates[VISION])
    t.resource_count_is("AWS::ApplicationAutoScaling::ScalableTarget", 1)
    t.resource_count_is("AWS::CloudWatch::Alarm", 2)
    t.resource_count_is("AWS::CloudWatch::Dashboard", 1)
    t.resource_count_is("AWS::SageMaker::DataQualityJobDefinition", 0)
    config = _props(t, "AWS::SageMaker::Endpoint")["DeploymentConfig"]
    assert config["BlueGreenUpdatePolicy"] == {
        "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 300},
        "TerminationWaitInSeconds": 300,
        "MaximumExecutionTimeoutInSeconds": 3600,
    }
    assert len(config["AutoRollbackConfiguration"]["Alarms"]) == 2
    assert "DataCaptureConfig" not in _props(t, "AWS::SageMaker::EndpointConfig")
    assert "AlarmTopicArn" in default_templates[VISION]["Outputs"]
