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


BUILTIN_CLOUDFORMATION_VALIDATION = False
"""``App(builtin_cloud_formation_validation=...)`` of ``app.py`` and ``pipeline_app.py``.

aws-cdk-lib's built-in CloudFormation validation plugin runs cfn-lint's rules (compiled to
WASM) over every template at ``app.synth()`` and turns their errors into warnings
(``downgradeCfnValidateErrorsToWarnings`` in ``core/lib/private/synthesis-validation.js``): it
cannot fail a synth, and it was 2-4.5 s of the default config's ~5 s ``app.synth()``
(``bench/synth_breakdown.py``). The gate runs the pinned cfn-lint itself on every template of
every config and fails on its errors and warnings (``hf_towers/tools/synth_check.py``,
``tests/stacks/test_config_coverage.py``), so the plugin is off. The Makefile exports
``CDK_VALIDATION=false`` (the plugin's documented switch) for the apps the tests build.
"""
