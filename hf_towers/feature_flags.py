"""CDK feature flags, in code so that ``app.py``, tests and pipelines synthesize identically
(flags in ``cdk.json`` reach only apps started by the CDK CLI)."""

FEATURE_FLAGS: dict[str, object] = {
    "@aws-cdk/core:checkSecretUsage": True,
    "@aws-cdk/core:target-partitions": ["aws", "aws-cn"],
    "@aws-cdk/aws-iam:minimizePolicies": True,
    "@aws-cdk/core:validateSnapshotRemovalPolicy": True,
    "@aws-cdk/aws-s3:createDefaultLoggingPolicy": True,
    "@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy": True,
    "@aws-cdk/core:enablePartitionLiterals": True,
    "@aws-cdk/aws-iam:standardizedServicePrincipals": True,
    "@aws-cdk/aws-kms:reduceCrossAccountRegionPolicyScope": True,
    "@aws-cdk/aws-lambda:recognizeLayerVersion": True,
    "@aws-cdk/customresources:installLatestAwsSdkDefault": False,
    "@aws-cdk/aws-kms:aliasNameRef": True,
    "@aws-cdk/core:includePrefixInUniqueNameGeneration": True,
    # What CDK asks to be set: the reference strength it defaulted to ("strong": Fn::ImportValue,
    # which protects the producing stack), now explicit, so the templates stay as they are and
    # every synth stops printing the warning (aws-cdk-lib README, "Reference strength").
    "@aws-cdk/core:defaultCrossStackReferences": "strong",
}
