"""Data-quality gates on ingested batches (great-expectations 1.x), thresholds in one file.

- :mod:`python_steps.quality.gates`: batch profiles, the suite built from history and
  ``quality_gates.toml``, the results table

May import :mod:`python_steps.tables`.
"""
