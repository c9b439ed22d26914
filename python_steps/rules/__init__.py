"""Typed rules: IR, canonical form, the one compiler, the reference evaluator.

Public API::

    parse_rule(obj) -> Rule              validate + canonicalize (raises RuleError)
    to_json(rule) / canonical_json(rule) / rule_id(rule) / describe(rule) / complexity(rule)
    compile_sql_predicate(rule) / compile_select(rule) / to_python_regex(rule)
    signal_clauses(rule) / evaluate(rule, row) / quote_literal(value)
"""

from python_steps.rules.compiler import (
    MESSAGE_RELATION,
    compile_select,
    compile_sql_predicate,
    is_signal_evaluable,
    quote_literal,
    signal_clauses,
    to_python_regex,
)
from python_steps.rules.evaluate import evaluate
from python_steps.rules.ir import (
    AllOf,
    AnyOf,
    Leaf,
    Not,
    Rule,
    RuleError,
    canonical_json,
    canonicalize,
    complexity,
    describe,
    is_anchored,
    leaves,
    parse_rule,
    rule_id,
    to_json,
)
from python_steps.rules.regex_subset import RegexError

__all__ = [
    "MESSAGE_RELATION",
    "AllOf",
    "AnyOf",
    "Leaf",
    "Not",
    "RegexError",
    "Rule",
    "RuleError",
    "canonical_json",
    "canonicalize",
    "compile_select",
    "compile_sql_predicate",
    "complexity",
    "describe",
    "evaluate",
    "is_anchored",
    "is_signal_evaluable",
    "leaves",
    "parse_rule",
    "quote_literal",
    "rule_id",
    "signal_clauses",
    "to_json",
    "to_python_regex",
]
