"""The multi-account delivery pipeline (CDK Pipelines): ``pipeline_app.py`` builds it."""
