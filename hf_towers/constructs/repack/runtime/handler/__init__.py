"""Lambda code of the repack custom resource (stdlib + boto3 only).

Deployed as the ``handler`` package (``handler.index.on_event`` / ``handler.index.is_complete``).
"""
