"""Markdown rendering of the report."""

from __future__ import annotations

from typing import Any

from hf_towers.risk.report import cell, render_error, render_markdown, verdict
from hf_towers.risk.rules import evaluate
from hf_towers.risk.template_diff import diff_assemblies


def res(rtype: str, **props: Any) -> dict[str, Any]:
    return {"Type": rtype, "Properties": props}


OLD = {
    "Data": {"Resources": {"B": res("AWS::S3::Bucket", BucketName="a")}},
    "Serve": {"Resources": {"Q": res("AWS::SQS::Queue", DelaySeconds=1)}},
    "Quiet": {"Resources": {"T": res("AWS::SNS::Topic")}},
}
NEW = {
    "Data": {"Resources": {"B": res("AWS::S3::Bucket", BucketName="b|c")}},
    "Serve": {
        "Resources": {
            "Q": res("AWS::SQS::Queue", DelaySeconds=2),
            "P": res(
                "AWS::IAM::Policy",
                PolicyDocument={"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]},
            ),
        }
    },
    "Quiet": {"Resources": {"T": res("AWS::SNS::Topic")}},
}


def _report() -> str:
    diffs = diff_assemblies(OLD, NEW)
    return render_markdown(diffs, evaluate(diffs), "`origin/main` (abc123)")


def test_sections_and_summary_rows() -> None:
    text = _report()
    assert text.startswith("### Offline change report: `origin/main` (abc123) → working tree")
    assert "#### Risky changes" in text and "#### Summary" in text
    assert "| `Data` | changed | 0 | 0 | 0 | 1 | 2 |" in text
    assert "| `Serve` | changed | 1 | 0 | 1 | 0 | 2 |" in text
    assert "| `Quiet` | unchanged | 0 | 0 | 0 | 0 | 0 |" in text
    assert "#### `Quiet`" not in text  # no detail table for an unchanged stack


def test_replacement_row_names_create_only_property() -> None:
    text = _report()
    row = next(line for line in text.splitlines() if line.startswith("| 🔁"))
    assert "`B`" in row and "`BucketName` (create-only)" in row
    assert "create-only property BucketName changed" in row


def test_risky_rows_and_verdict() -> None:
    text = _report()
    assert "**4 risky change(s)**" in text
    assert "| `Serve` | `P` | `AWS::IAM::Policy` | `iam-widened` |" in text
    assert '"b\\|c"' in text  # pipes in values do not break the table


def test_no_changes() -> None:
    diffs = diff_assemblies(OLD, OLD)
    text = render_markdown(diffs, [], "base")
    assert "No resource changes." in text
    assert "None found." in text
    assert verdict(diffs, []) == "No resource changes."


def test_cell_escapes() -> None:
    assert cell("a|b\nc") == "a\\|b c"


def test_error_report() -> None:
    text = render_error("`nope`", "git rev-parse failed\n")
    assert "could not be produced" in text and "git rev-parse failed" in text


def test_conditional_replacement_is_noted() -> None:
    old = {"S": {"Resources": {"I": res("AWS::EC2::Instance", InstanceType="t3.small")}}}
    new = {"S": {"Resources": {"I": res("AWS::EC2::Instance", InstanceType="t3.large")}}}
    text = render_markdown(diff_assemblies(old, new), [], "base")
    assert "may be replaced: conditionally create-only `InstanceType`" in text


def test_custom_resource_notes_missing_schema() -> None:
    old = {"S": {"Resources": {"C": res("Custom::Repack", Source="a")}}}
    new = {"S": {"Resources": {"C": res("Custom::Repack", Source="b")}}}
    text = render_markdown(diff_assemblies(old, new), [], "base")
    assert "no resource schema: replacement not predicted" in text


def test_cascaded_rows_name_the_referring_property() -> None:
    def stack(image: str) -> dict[str, Any]:
        model_name = {"Fn::GetAtt": ["Model", "ModelName"]}
        config_name = {"Fn::GetAtt": ["Config", "EndpointConfigName"]}
        return {
            "Resources": {
                "Model": res("AWS::SageMaker::Model", PrimaryContainer={"Image": image}),
                "Config": res(
                    "AWS::SageMaker::EndpointConfig", ProductionVariants=[{"ModelName": model_name}]
                ),
                "Endpoint": res("AWS::SageMaker::Endpoint", EndpointConfigName=config_name),
            }
        }

    text = render_markdown(diff_assemblies({"S": stack("i:1")}, {"S": stack("i:2")}), [], "base")
    rows = {
        line.split("|")[2].strip(): line
        for line in text.splitlines()
        if line.startswith("| 🔁") or line.startswith("| ✏️")
    }
    assert (
        "`ProductionVariants` (create-only)<br>"
        "create-only property ProductionVariants refers to replaced Model" in rows["`Config`"]
    )
    assert "`EndpointConfigName`<br>updated: refers to replaced Config" in rows["`Endpoint`"]


def test_render_report_one_section_per_environment() -> None:
    from hf_towers.risk.report import EnvironmentReport, overall_verdict, render_report

    changed = diff_assemblies(OLD, NEW)
    quiet = diff_assemblies({"Quiet": OLD["Quiet"]}, {"Quiet": NEW["Quiet"]})
    environments = [
        EnvironmentReport("config/dev.yaml", "compared", quiet, []),
        EnvironmentReport("config/prod.yaml", "compared", changed, evaluate(changed)),
        EnvironmentReport("config/bad.yaml", "failed", error="boom ``` fence"),
    ]
    text = render_report(environments, "`origin/main` (abc123)")
    assert text.startswith("### Offline change report: `origin/main` (abc123) → working tree")
    assert overall_verdict(environments) in text
    assert overall_verdict(environments).startswith(
        "❌ 1 environment(s) could not be synthesized; ⚠️ 3 resource change(s) in 1 of 3"
    )
    assert "| `config/prod.yaml` | changed | 3 | 3 | 1 | 4 |" in text
    assert "| `config/dev.yaml` | unchanged | 1 | 0 | 0 | 0 |" in text
    prod = text.split("#### Environment `config/prod.yaml`: changed")[1]
    assert "##### Risky changes" in prod and "##### Summary" in prod
    assert "##### `Data` (changed)" in prod
    assert "#### Environment `config/bad.yaml`: ❌ not synthesized" in text
    assert "boom ''' fence" in text  # the error cannot close its code block early
    assert overall_verdict([]) == "No environment config files: nothing to compare."
    assert overall_verdict(environments[:1]) == "No resource changes in 1 environment(s)."


def test_will_fail_findings_are_marked_and_counted_apart() -> None:
    """A change that CloudFormation or SageMaker will reject read like any risky row."""
    from hf_towers.risk.rules import WILL_FAIL, Finding

    diffs = diff_assemblies(OLD, NEW)
    failing = Finding(
        "autoscaled-variant-update",
        "Serve",
        "Q",
        "AWS::SQS::Queue",
        "will fail: example",
        WILL_FAIL,
    )
    findings = [failing, *evaluate(diffs)]
    text = render_markdown(diffs, findings, "base")
    assert verdict(diffs, findings).startswith("❌ ")
    assert "**1 change(s) will fail** on deploy (each row gives the way out)" in text
    assert "**4 risky change(s)** need review" in text
    assert (
        "| ❌ will fail | `Serve` | `Q` | `AWS::SQS::Queue` | `autoscaled-variant-update` |" in text
    )
    assert "| ⚠️ risky | `Serve` | `P` |" in text
    assert verdict(diffs, evaluate(diffs)).startswith("⚠️ ")
