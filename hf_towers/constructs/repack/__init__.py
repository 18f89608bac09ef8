"""The repack custom resource: ``construct.py`` (synth time, CDK) and ``runtime/handler/`` (the
Lambda functions' code, shipped as the asset; stdlib + boto3). See ``docs/repack.md``."""

from hf_towers.constructs.repack.construct import RepackedModelData

__all__ = ["RepackedModelData"]
