"""PATAS's logic: the steps behind the Dagster assets, one subpackage per stage.

Importable without Dagster and without the application layer (:mod:`patas`): nothing in this
package imports ``dagster``, ``dagster_dbt``, ``patas_dagster`` or ``patas``, not even inside a
function (``tests/unit/test_layering.py`` reads the source to prove it). The packages and what each
may import are in ``docs/architecture.md``.

- :mod:`python_steps.settings`, :mod:`python_steps.runspec`: configuration and the one run specification
- :mod:`python_steps.warehouse`, :mod:`python_steps.tables`: connections, locks, the tables PATAS writes
- :mod:`python_steps.metrics`: precision bounds (Wilson, rule of three), the one copy
- :mod:`python_steps.ingest`: files -> ``raw.messages`` with every line accounted for
- :mod:`python_steps.text`: normalization and entity extraction (the Python twins of the dbt macros)
- :mod:`python_steps.rules`: typed rules, the compiler, the regex subset, SQL safety
- :mod:`python_steps.mining`: windows, stage-2 clustering, drafting, the LLM boundary
- :mod:`python_steps.lifecycle`: safety profiles, promotion policy (pure), its store, manual actions
- :mod:`python_steps.publish`: rule exports, rule cards, the run report
- :mod:`python_steps.bench`: what benchmarks need that is logic (the corpus generator, baselines)
"""

__version__ = "0.1.0"
