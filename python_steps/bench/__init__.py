"""Benchmarks: stage speed against physical floors, rule quality against baselines.

- :mod:`python_steps.bench.speed` times every stage on a fresh database next to a bare ``COPY``
  and a sequential scan of the same rows.
- :mod:`python_steps.bench.quality` runs the pipeline per safety profile and the two baselines of
  :mod:`python_steps.bench.baselines` on the same held-out messages.
- :mod:`python_steps.bench.plots` draws the figures in ``docs/``; :mod:`python_steps.bench.cli`
  is the ``patas bench`` command group.

Nothing here is imported by the pipeline itself.
"""
