"""Names shared by the construct (which sets them) and the handler (which reads them).

CloudFormation hands custom resource properties over as strings; numbers and booleans are
encoded with ``str()`` / ``"true"``/``"false"`` by the construct.
"""

from __future__ import annotations

# Resource properties.
SOURCE_BUCKET = "SourceBucket"
SOURCE_KEY = "SourceKey"
"""Key of a ``.tar.gz`` object, or a prefix ending in ``/`` (only with ``Compressed=false``)."""
CODE_BUCKET = "CodeBucket"
CODE_KEY = "CodeKey"
"""Zip of the tower's code directory (a CDK asset)."""
OUTPUT_BUCKET = "OutputBucket"
OUTPUT_PREFIX = "OutputPrefix"
"""The tower's name: every object the function writes lies under ``<OutputPrefix>/``."""
KMS_KEY_ARN = "KmsKeyArn"
ENTRY_MODULE = "EntryModule"
COMPRESSED = "Compressed"
MAX_RATIO = "MaxRatio"
RETAIN_ON_DELETE = "RetainOnDelete"
PART_SIZE = "PartSize"
"""Multipart part size in bytes for streamed output (>= 5 MiB)."""

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
