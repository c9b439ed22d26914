"""Publishing: what PATAS hands to people and other systems.

- :mod:`python_steps.publish.exports`: rule files (portable SQL, ROL regex JSON, typed JSON)
- :mod:`python_steps.publish.cards`: rule cards (``patas rules list|show``)
- :mod:`python_steps.publish.report`: the run summary and report

May import :mod:`python_steps.rules`, :mod:`python_steps.lifecycle` and :mod:`python_steps.tables`.
"""
