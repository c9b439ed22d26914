"""Ingestion: message files into ``raw.messages``, every line loaded, duplicate or quarantined.

- :mod:`python_steps.ingest.parsing`: lines -> rows of the message contract or rejects (no database)
- :mod:`python_steps.ingest.load`: one file = one batch, loaded with ``COPY`` in one transaction
- :mod:`python_steps.ingest.feedback`: label verdicts after the fact (``patas.label_feedback``)
- :mod:`python_steps.ingest.inbox`: the files waiting in the inbox folder (for the Dagster sensor)

May import :mod:`python_steps.tables` and :mod:`python_steps.settings`.
"""
