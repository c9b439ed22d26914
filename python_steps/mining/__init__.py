"""Mining: turning stage-1 aggregates into rules.

- :mod:`python_steps.mining.windows`: the run's mining and evaluation windows
- :mod:`python_steps.mining.clustering`: stage 2, semantic clusters of the spam stage 1 left uncovered
- :mod:`python_steps.mining.drafting`: deterministic rule drafts from candidates and clusters
- :mod:`python_steps.mining.llm`: optional LLM drafting from aggregated signals only (retries,
  cost from ``llm_prices.toml``, a per-run budget)
- :mod:`python_steps.mining.privacy`: what the LLM may see: the redactor and the ``standard`` /
  ``strict`` modes (pure)

May import :mod:`python_steps.rules`, :mod:`python_steps.text`, :mod:`python_steps.metrics`,
:mod:`python_steps.tables` and :mod:`python_steps.warehouse`.
"""
