"""Render stack diffs and risk findings as Markdown for a pull-request comment.

Layout: a title naming the base, a one-line verdict, a "Risky changes" section (a table of
findings, or a line saying there are none), a summary table with one row per stack, and one
table per changed stack listing each resource change with the properties that changed
(create-only ones marked) and the reason for a replacement.

``render_report`` covers several environments (one per config file): a title, one overall
verdict, a table with one row per environment, then one section per environment laid out as
above one heading level down (its own verdict line, risky changes, stack summary, tables).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hf_towers.risk.rules import Finding
from hf_towers.risk.template_diff import ChangeKind, ResourceChange, StackDiff

KIND_LABELS = {
    ChangeKind.ADDED: "🆕 added",
    ChangeKind.REMOVED: "🗑️ removed",
    ChangeKind.MODIFIED: "✏️ modified",
    ChangeKind.REPLACED: "🔁 **replaced**",
}
MAX_PATHS = 8


def cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _code(text: str) -> str:
    quoted = cell(text).replace("`", "'")
    return f"`{quoted}`"


def _paths(change: ResourceChange) -> str:
    if change.kind in (ChangeKind.ADDED, ChangeKind.REMOVED):
        return ""
    create_only = set(change.create_only_changed)
    shown: list[str] = []
    for path in change.changed_paths:
        short = path.removeprefix("Properties/")
        marker = (
            " (create-only)"
            if any(short == c or short.startswith(c + "/") for c in create_only)
            else ""
        )
        shown.append(_code(short) + marker)
    extra = len(shown) - MAX_PATHS
    parts = [", ".join(shown[:MAX_PATHS]) + (f" and {extra} more" if extra > 0 else "")]
    if change.kind is ChangeKind.REPLACED and change.replacement_reasons:
        parts.append(cell("; ".join(change.replacement_reasons)))
    if change.kind is ChangeKind.MODIFIED and change.may_replace:
        parts.append(
            "may be replaced: conditionally create-only "
            + ", ".join(_code(path) for path in change.may_replace)
        )
    parts += [cell(note) for note in change.notes]
    if not change.schema_known:
        parts.append("no resource schema: replacement not predicted")
    text = "<br>".join(part for part in parts if part)
    return text


def _stack_table(diff: StackDiff, level: int = 4) -> list[str]:
    lines = [
        f"{'#' * level} `{cell(diff.stack)}` ({diff.status})",
        "",
        "| Change | Logical ID | Type | Changed properties |",
        "| --- | --- | --- | --- |",
    ]
    order = [ChangeKind.REPLACED, ChangeKind.REMOVED, ChangeKind.MODIFIED, ChangeKind.ADDED]
    for change in sorted(diff.changes, key=lambda c: (order.index(c.kind), c.logical_id)):
        lines.append(
            f"| {KIND_LABELS[change.kind]} | {_code(change.logical_id)} "
            f"| {_code(change.resource_type)} | {_paths(change)} |"
        )
    return [*lines, ""]


def verdict(diffs: Sequence[StackDiff], findings: Sequence[Finding]) -> str:
    changed = [d for d in diffs if d.changes]
    if not changed:
        return "No resource changes."
    total = sum(len(d.changes) for d in changed)
    replaced = sum(d.count(ChangeKind.REPLACED) for d in changed)
    text = f"{total} resource change(s) in {len(changed)} stack(s), {replaced} replacement(s)"
    return _judged(text, findings)


def _judged(text: str, findings: Sequence[Finding]) -> str:
    """``text`` (what changed) with its mark and what the findings ask for."""
    if not findings:
        return f"✅ {text}; no risky changes."
    flag = "❌" if any(f.will_fail for f in findings) else "⚠️"
    return f"{flag} {text}; {_findings_text(findings)}."


def _findings_text(findings: Sequence[Finding]) -> str:
    """``**2 change(s) will fail** (deploying them fails: see the way out), **1 risky change(s)**
    need review`` — the will-fail ones counted apart, as a deploy of them fails."""
    failing = sum(1 for f in findings if f.will_fail)
    risky = len(findings) - failing
    parts = []
    if failing:
        parts.append(f"**{failing} change(s) will fail** on deploy (each row gives the way out)")
    if risky:
        parts.append(f"**{risky} risky change(s)** need review")
    return ", ".join(parts)


def _body(diffs: Sequence[StackDiff], findings: Sequence[Finding], level: int) -> list[str]:
    """Risky changes, the stack summary and the per-stack tables, headings at ``level``."""
    heading = "#" * level
    lines = [f"{heading} Risky changes", ""]
    if findings:
        lines += [
            "| Severity | Stack | Resource | Type | Rule | Why |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        lines += [
            f"| {'❌ will fail' if f.will_fail else '⚠️ risky'} | {_code(f.stack)} "
            f"| {_code(f.logical_id)} | {_code(f.resource_type)} "
            f"| {_code(f.rule)} | {cell(f.message)} |"
            for f in findings
        ]
    else:
        lines.append("None found.")
    lines += [
        "",
        f"{heading} Summary",
        "",
        "| Stack | Status | Added | Removed | Modified | Replaced | Risky |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for diff in diffs:
        risky = sum(1 for f in findings if f.stack == diff.stack)
        counts = " | ".join(
            str(diff.count(kind))
            for kind in (
                ChangeKind.ADDED,
                ChangeKind.REMOVED,
                ChangeKind.MODIFIED,
                ChangeKind.REPLACED,
            )
        )
        lines.append(f"| {_code(diff.stack)} | {diff.status} | {counts} | {risky} |")
    if not diffs:
        lines.append("| (no stacks) | | | | | | |")
    lines.append("")
    for diff in diffs:
        if diff.changes:
            lines += _stack_table(diff, level)
    return lines


FOOTER = (
    "<sub>Replacement predicted from CloudFormation resource schemas (create-only "
    "properties, as shipped with cfn-lint); synthesized without AWS credentials.</sub>"
)
FENCE = "```"


def render_markdown(
    diffs: Sequence[StackDiff],
    findings: Sequence[Finding],
    base_label: str,
    head_label: str = "working tree",
) -> str:
    """The report of one set of stacks."""
    lines = [
        f"### Offline change report: {cell(base_label)} → {cell(head_label)}",
        "",
        verdict(diffs, findings),
        "",
        *_body(diffs, findings, 4),
        FOOTER,
    ]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class EnvironmentReport:
    """One environment (config file) of the report. ``status``: ``added`` (the file exists only
    in the working tree), ``removed`` (only in the base), ``compared`` (both) or ``failed``
    (``error`` says why a side could not be synthesized)."""

    config: str
    status: str
    diffs: Sequence[StackDiff] = ()
    findings: Sequence[Finding] = ()
    error: str | None = None

    @property
    def changed(self) -> bool:
        """At least one resource change."""
        return any(diff.changes for diff in self.diffs)

    @property
    def label(self) -> str:
        """The status as the report words it."""
        if self.status == "failed":
            return "❌ not synthesized"
        if self.status == "added":
            return "🆕 new environment: every stack added"
        if self.status == "removed":
            return "🗑️ deleted environment: every stack removed"
        return "changed" if self.changed else "unchanged"


def overall_verdict(environments: Sequence[EnvironmentReport]) -> str:
    """One line over every environment."""
    if not environments:
        return "No environment config files: nothing to compare."
    failed = [env for env in environments if env.status == "failed"]
    changed = [env for env in environments if env.changed]
    diffs = [diff for env in environments for diff in env.diffs]
    findings = [finding for env in environments for finding in env.findings]
    parts: list[str] = []
    if failed:
        parts.append(f"❌ {len(failed)} environment(s) could not be synthesized")
    if not changed:
        parts.append(f"No resource changes in {len(environments) - len(failed)} environment(s).")
        return "; ".join(parts)
    total = sum(len(d.changes) for d in diffs)
    replaced = sum(d.count(ChangeKind.REPLACED) for d in diffs)
    text = (
        f"{total} resource change(s) in {len(changed)} of {len(environments)} "
        f"environment(s), {replaced} replacement(s)"
    )
    parts.append(_judged(text, findings))
    return "; ".join(parts)


def render_report(
    environments: Sequence[EnvironmentReport],
    base_label: str,
    head_label: str = "working tree",
) -> str:
    """The report of every environment: one section per config file."""
    lines = [
        f"### Offline change report: {cell(base_label)} → {cell(head_label)}",
        "",
        overall_verdict(environments),
        "",
        "| Environment | Status | Stacks | Changes | Replaced | Risky |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for env in environments:
        changes = sum(len(d.changes) for d in env.diffs)
        replaced = sum(d.count(ChangeKind.REPLACED) for d in env.diffs)
        lines.append(
            f"| {_code(env.config)} | {env.label} | {len(env.diffs)} | {changes} "
            f"| {replaced} | {len(env.findings)} |"
        )
    lines.append("")
    for env in environments:
        lines += [f"#### Environment {_code(env.config)}: {env.label}", ""]
        if env.error is not None:
            lines += [FENCE, env.error.strip().replace(FENCE, "'''"), FENCE, ""]
            continue
        lines += [verdict(env.diffs, env.findings), "", *_body(env.diffs, env.findings, 5)]
    lines.append(FOOTER)
    return "\n".join(lines) + "\n"


def render_error(base_label: str, error: str) -> str:
    """The report when synthesis failed, so the PR comment says why."""
    return (
        f"### Offline change report: {cell(base_label)} → working tree\n\n"
        f"❌ The report could not be produced:\n\n```\n{error.strip()}\n```\n"
    )
