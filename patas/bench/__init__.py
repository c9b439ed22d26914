"""The benchmark harness (``patas bench ...``): fresh databases, timed runs, figures and plots.

- :mod:`patas.bench.speed` times every stage of the real job on a fresh database next to a bare
  ``COPY`` and a sequential scan (the floors); :mod:`patas.bench.ingest_floor`,
  :mod:`patas.bench.stage1` and :mod:`patas.bench.shadow_eval` measure one stage alone.
- :mod:`patas.bench.quality` runs the pipeline per safety profile and the baselines of
  :mod:`python_steps.bench.baselines` on the same held-out, label-blind messages.
- :mod:`patas.bench.plots` and :mod:`patas.bench.tables` draw the figures and tables in ``docs/``.
"""
