"""Text: the one normalizer and entity extraction (:mod:`python_steps.text.normalize`, the Python
twin of the dbt macros, tested equal to them) and the generated reference data behind the seeds
(:mod:`python_steps.text.reference_data`). Imports nothing else from PATAS but settings.
"""
