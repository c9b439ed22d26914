"""The rule lifecycle: ``candidate -> shadow -> active -> deprecated``, by safety profile, audited.

- :mod:`python_steps.lifecycle.profiles`: safety profiles and quality tiers (TOML, user-overridable)
- :mod:`python_steps.lifecycle.policy`: promotion and deprecation decisions, pure functions of metrics
- :mod:`python_steps.lifecycle.store`: reads the shadow evaluation, applies the policy, writes the
  lifecycle, audit, history and ruleset tables in one transaction
- :mod:`python_steps.lifecycle.manual`: promote, deprecate, pin and add rules by hand, audited

``policy`` and ``profiles`` import no database code; ``store`` and ``manual`` may import
:mod:`python_steps.tables`, :mod:`python_steps.rules` and :mod:`python_steps.mining`.
"""
