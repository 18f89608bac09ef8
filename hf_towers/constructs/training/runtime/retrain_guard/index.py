"""Start the fine-tuning pipeline on a drift event, unless it started within the cool-down.

Invoked by the EventBridge rule on a completed processing job of a watched Model Monitor
schedule (``SageMaker Processing Job State Change``; its detail carries the job's
``DescribeProcessingJob`` fields, ``MonitoringScheduleArn`` among them). A monitoring execution
that found violations ends ``CompletedWithViolations`` (``MonitoringExecutionSummary``); the
function checks that status with ``ListMonitoringExecutions`` before it starts anything.
Reserved concurrency 1 runs the events one at a time, so violations of two towers arriving
together start one execution, not two. Environment: ``PIPELINE_NAME``, ``COOLDOWN_HOURS``.
Stdlib + boto3 (the Lambda runtime's).
"""

from __future__ import annotations

import datetime
import os
from typing import Any

import boto3

PIPELINE_NAME = "PIPELINE_NAME"
COOLDOWN_HOURS = "COOLDOWN_HOURS"
VIOLATIONS = "CompletedWithViolations"


def found_violations(client: Any, schedule: str, job_arn: str) -> bool:
    """Whether the monitoring execution that ran as ``job_arn`` ended with violations."""
    answer = client.list_monitoring_executions(
        MonitoringScheduleName=schedule,
        StatusEquals=VIOLATIONS,
        SortBy="CreationTime",
        SortOrder="Descending",
        MaxResults=10,
    )
    summaries = answer.get("MonitoringExecutionSummaries", [])
    return any(s.get("ProcessingJobArn") == job_arn for s in summaries)


def recent_execution(client: Any, pipeline: str, since: datetime.datetime) -> str | None:
    """The ARN of an execution of ``pipeline`` created after ``since`` (any status), if any."""
    answer = client.list_pipeline_executions(
        PipelineName=pipeline,
        CreatedAfter=since,
        SortBy="CreationTime",
        SortOrder="Descending",
        MaxResults=1,
    )
    for summary in answer.get("PipelineExecutionSummaries", []):
        arn: str = summary["PipelineExecutionArn"]
        return arn
    return None


def decide(
    event: dict[str, Any], client: Any, pipeline: str, cooldown_hours: int, now: datetime.datetime
) -> dict[str, Any]:
    """Start the pipeline or skip it; the answer says which and why (it is logged)."""
    detail = event.get("detail", {})
    schedule = str(detail.get("MonitoringScheduleArn", "")).rsplit("/", 1)[-1]
    job_arn = str(detail.get("ProcessingJobArn", ""))
    if not schedule or not found_violations(client, schedule, job_arn):
        return {"started": False, "reason": f"{job_arn or 'the job'} found no violations"}
    since = now - datetime.timedelta(hours=cooldown_hours)
    running = recent_execution(client, pipeline, since)
    if running is not None:
        return {"started": False, "reason": f"{running} started within {cooldown_hours} h"}
    started = client.start_pipeline_execution(
        PipelineName=pipeline,
        PipelineExecutionDisplayName=f"drift-{schedule}"[:82],
        PipelineExecutionDescription=f"Data-quality violations found by {job_arn}"[:3072],
        # The event id: EventBridge delivers at least once; a redelivery starts nothing new.
        ClientRequestToken=str(event["id"])[:128],
    )
    return {"started": True, "execution": started["PipelineExecutionArn"]}


def handler(event: dict[str, Any], _context: object) -> dict[str, Any]:
    result = decide(
        event,
        boto3.client("sagemaker"),
        os.environ[PIPELINE_NAME],
        int(os.environ[COOLDOWN_HOURS]),
        datetime.datetime.now(datetime.UTC),
    )
    print(result)
    return result
