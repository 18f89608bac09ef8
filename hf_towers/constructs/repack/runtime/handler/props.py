"""Names shared by the construct (which sets them) and the handler (which reads them).

CloudFormation hands custom resource properties over as strings; numbers and booleans are
encoded with ``str()`` / ``"true"``/``"false"`` by the construct.
"""

from __future__ import annotations

from typing import Final, Literal, NotRequired, TypedDict

# Resource properties (``Final``, so mypy reads them as the literal keys of the TypedDicts).
SOURCE_BUCKET: Final = "SourceBucket"
SOURCE_KEY: Final = "SourceKey"
"""Key of a ``.tar.gz`` object, or a prefix ending in ``/`` (only with ``Compressed=false``)."""
CODE_BUCKET: Final = "CodeBucket"
CODE_KEY: Final = "CodeKey"
"""Zip of the tower's code directory (a CDK asset)."""
OUTPUT_BUCKET: Final = "OutputBucket"
OUTPUT_PREFIX: Final = "OutputPrefix"
"""The tower's name: every object the function writes lies under ``<OutputPrefix>/``."""
KMS_KEY_ARN: Final = "KmsKeyArn"
ENTRY_MODULE: Final = "EntryModule"
COMPRESSED: Final = "Compressed"
MAX_RATIO: Final = "MaxRatio"
RETAIN_ON_DELETE: Final = "RetainOnDelete"
PART_SIZE: Final = "PartSize"
"""Multipart part size in bytes for streamed output (>= 5 MiB)."""


# The contract between the construct (which builds the properties) and the handler (which reads
# them), checked by mypy on both sides. Values are strings: CloudFormation passes custom resource
# properties as strings (custom resource request objects, docs.aws.amazon.com/AWSCloudFormation/
# latest/UserGuide/crpg-ref-requests.html).
class ResourceProperties(TypedDict):
    ServiceToken: NotRequired[str]
    SourceBucket: str
    SourceKey: str
    CodeBucket: str
    CodeKey: str
    OutputBucket: str
    OutputPrefix: str
    KmsKeyArn: str
    EntryModule: NotRequired[str]
    Compressed: NotRequired[str]
    MaxRatio: NotRequired[str]
    PartSize: NotRequired[str]
    RetainOnDelete: NotRequired[str]


class Event(TypedDict):
    """What the Provider framework passes to ``on_event`` and ``is_complete``."""

    RequestType: Literal["Create", "Update", "Delete"]
    ResourceProperties: ResourceProperties
    OldResourceProperties: NotRequired[ResourceProperties]
    PhysicalResourceId: NotRequired[str]
    """Absent on Create; on ``is_complete``, the id ``on_event`` returned."""
    StackId: NotRequired[str]
    LogicalResourceId: NotRequired[str]
    RequestId: NotRequired[str]
    ResourceType: NotRequired[str]
    Data: NotRequired[dict[str, str]]
    """On ``is_complete``: the attributes ``on_event`` returned."""


# Attributes returned in ``Data``.
ATTR_MODEL_DATA_URL = "ModelDataUrl"
"""``s3://bucket/key`` of the repacked ``model.tar.gz``; the prefix URI when uncompressed."""
ATTR_S3_URI = "S3Uri"
ATTR_KEY = "Key"
"""Object key (compressed) or key prefix ending in ``/`` (uncompressed), without the bucket."""
ATTR_SOURCE_ETAG = "SourceETag"

TRUE = "true"
FALSE = "false"

DEFAULT_ENTRY_MODULE = "inference.py"
DEFAULT_MAX_RATIO = 100.0
DEFAULT_PART_SIZE = 16 * 1024 * 1024
MIN_PART_SIZE = 5 * 1024 * 1024

FORMAT_VERSION = "2"
"""Bumped whenever the produced bytes change for the same inputs (part of the content hash)."""
