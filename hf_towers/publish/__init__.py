"""``main.py publish``: a Hugging Face model card and the model folder, pushed to the Hub.

``metrics`` reads the evaluation report (a local ``evaluation.json`` or the one a registered
model package points at); ``registry`` asks SageMaker for the package; ``folder`` turns the
artifact into the folder that is uploaded (a ``model.tar.gz`` through the repack's validated
extraction); ``card`` writes the ``ModelCard``; ``hub`` pushes the folder with an ``HfApi``.
"""
