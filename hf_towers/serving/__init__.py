"""Run the towers' inference code locally, inside the same handler the SageMaker container uses.

``handler_host`` drives the Hugging Face inference toolkit's ``HuggingFaceHandlerService`` in
this process the way a model-server worker does; ``local_server`` puts it behind ``GET /ping`` and
``POST /invocations`` on loopback; ``toy_models`` builds small checkpoints without a hub download.
These modules need the inference requirements (``requirements-inference.txt``), not the CDK app's.
"""
