"""The drift -> retrain guard's logic (runtime/retrain_guard/index.py) against a recording client."""

from __future__ import annotations

import datetime
import importlib.util
import sys
from typing import Any

import pytest

from hf_towers.constructs.training import retrain
from tests.synth_helpers import REPO

NOW = datetime.datetime(2026, 12, 1, 12, 0, tzinfo=datetime.UTC)
JOB = "arn:aws:sagemaker:us-east-1:123456789012:processing-job/model-monitoring-202612011100-abc"
SCHEDULE = (
    "arn:aws:sagemaker:us-east-1:123456789012:monitoring-schedule/hf-towers-dev-text-data-quality"
)
EVENT = {
    "id": "0a15f67d-aa23-0123-0123-01a23w89r01t",
    "detail-type": "SageMaker Processing Job State Change",
    "detail": {
        "ProcessingJobArn": JOB,
        "ProcessingJobStatus": "Completed",
        "MonitoringScheduleArn": SCHEDULE,
    },
}


def guard() -> Any:
    path = REPO / "hf_towers" / "constructs" / "training" / "runtime" / "retrain_guard" / "index.py"
    spec = importlib.util.spec_from_file_location("retrain_guard_index", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


class Client:
    """Answers like the SageMaker API and records every call."""

    def __init__(self, *, violations: list[str], executions: list[str]) -> None:
        self.violations, self.executions = violations, executions
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def list_monitoring_executions(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("list_monitoring_executions", kwargs))
        return {"MonitoringExecutionSummaries": [{"ProcessingJobArn": a} for a in self.violations]}

    def list_pipeline_executions(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("list_pipeline_executions", kwargs))
        return {
            "PipelineExecutionSummaries": [{"PipelineExecutionArn": a} for a in self.executions]
        }

    def start_pipeline_execution(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("start_pipeline_execution", kwargs))
        return {
            "PipelineExecutionArn": "arn:aws:sagemaker:us-east-1:123456789012:pipeline/p/execution/new"
        }


def test_violations_outside_the_cool_down_start_the_pipeline_once_per_event() -> None:
    client = Client(violations=[JOB], executions=[])
    result = guard().decide(EVENT, client, "hf-towers-dev-fine-tune", 24, NOW)
    assert result["started"] is True
    (_, monitoring), (_, listing), (_, start) = client.calls
    assert monitoring["MonitoringScheduleName"] == "hf-towers-dev-text-data-quality"
    assert monitoring["StatusEquals"] == "CompletedWithViolations"
    assert listing["CreatedAfter"] == NOW - datetime.timedelta(hours=24)
    assert start["PipelineName"] == "hf-towers-dev-fine-tune"
    assert start["ClientRequestToken"] == EVENT["id"]  # a redelivered event starts nothing new
    assert "hf-towers-dev-text-data-quality" in start["PipelineExecutionDisplayName"]


def test_an_execution_within_the_cool_down_skips() -> None:
    client = Client(violations=[JOB], executions=["arn:...:execution/earlier"])
    result = guard().decide(EVENT, client, "p", 6, NOW)
    assert result == {"started": False, "reason": "arn:...:execution/earlier started within 6 h"}
    assert [name for name, _ in client.calls] == [
        "list_monitoring_executions",
        "list_pipeline_executions",
    ]


@pytest.mark.parametrize(
    "violations", [[], ["arn:aws:sagemaker:us-east-1:123456789012:processing-job/another"]]
)
def test_a_monitoring_run_without_violations_starts_nothing(violations: list[str]) -> None:
    client = Client(violations=violations, executions=[])
    assert guard().decide(EVENT, client, "p", 24, NOW)["started"] is False
    assert [name for name, _ in client.calls] == ["list_monitoring_executions"]


def test_the_construct_and_the_handler_agree_on_the_environment() -> None:
    module = guard()
    assert (module.PIPELINE_NAME, module.COOLDOWN_HOURS) == (
        retrain.PIPELINE_NAME,
        retrain.COOLDOWN_HOURS,
    )


def test_the_handler_reads_its_environment(monkeypatch) -> None:
    module = guard()
    client = Client(violations=[JOB], executions=[])
    monkeypatch.setenv("PIPELINE_NAME", "from-env")
    monkeypatch.setenv("COOLDOWN_HOURS", "3")
    monkeypatch.setattr(module.boto3, "client", lambda service: client)
    assert module.handler(EVENT, None)["started"] is True
    assert client.calls[-1][1]["PipelineName"] == "from-env"
