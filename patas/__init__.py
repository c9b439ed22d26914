"""PATAS's application layer: the ``patas`` command line, the pipeline runner, the embedded
Postgres and the benchmark harness.

It sits on top: it may import :mod:`python_steps` (the logic) and :mod:`patas_dagster` (the
orchestration); nothing imports it. See ``docs/architecture.md``.
"""
