"""The model lifecycle's constructs: package groups, the fine-tuning pipeline, drift retraining."""
