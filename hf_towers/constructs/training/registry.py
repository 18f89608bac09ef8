"""Model Package Groups: the registry of every model family of an environment."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct


class ModelPackageGroup(Construct):
    """``AWS::SageMaker::ModelPackageGroup`` (id ``Resource``): the versions of one model family.

    The group is the record of what was trained and approved; ``removal_policy`` is the
    environment's (``retain`` keeps it and its versions when the stack goes).
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        group_name: str,
        description: str,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, id_)
        self.group_name = group_name
        self.resource = sagemaker.CfnModelPackageGroup(
            self,
            "Resource",
            model_package_group_name=group_name,
            model_package_group_description=description,
        )
        self.resource.apply_removal_policy(removal_policy)
