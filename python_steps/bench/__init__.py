"""Benchmark support that is logic, not harness: the synthetic corpus generator
(:mod:`python_steps.bench.generate`, also behind ``patas demo``) and the baselines rules are
measured against (:mod:`python_steps.bench.baselines`). May import :mod:`python_steps.text`.
The harness that runs them lives in :mod:`patas.bench`.
"""
