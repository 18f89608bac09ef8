"""Which region names are real: from the endpoint data botocore ships, not a pattern.

``us-east-9`` matches any region-shaped pattern and synthesizes (with an ECR image URI that does
not exist); botocore's ``endpoints.json`` lists the regions where each service has an endpoint.
"""

from __future__ import annotations

from functools import cache

PARTITIONS = ("aws", "aws-cn", "aws-us-gov")
"""Partitions a config may target (the stacks build ARNs with the stack's partition)."""


@cache
def service_regions(service: str) -> tuple[str, ...]:
    """Regions where ``service`` (a botocore service name, e.g. ``sagemaker``) has an endpoint."""
    import botocore.session

    session = botocore.session.get_session()
    return tuple(
        sorted(
            region
            for partition in PARTITIONS
            for region in session.get_available_regions(service, partition_name=partition)
        )
    )


def check_region(value: str, service: str, label: str) -> str:
    """``value`` if ``service`` runs there, else ``ValueError`` naming regions to use."""
    regions = service_regions(service)
    if value in regions:
        return value
    prefix = value.split("-")[0]
    close = [r for r in regions if r.split("-")[0] == prefix]
    suggestion = f"one of {', '.join(close)}" if close else "a region code such as us-east-1"
    raise ValueError(
        f"not an AWS region where {label} runs (botocore's endpoint data): use {suggestion}"
    )
