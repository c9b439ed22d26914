{#-
    The predicate rules to shadow-evaluate, read from patas.rule_drafts (through its staging view) at
    compile time:
    a list of (rule_id, sql_expression), the latest version of each rule whose evaluation_kind is
    'predicate', sorted by rule_id (deterministic SQL text). Empty at parse time and when the table
    does not exist yet.

    The expressions are the rule compiler's output (python_steps.rules) or raw SQL that passed
    python_steps.rules.sql_safety.validate_sql before it was stored; they are never user text pasted here.
    Rule ids are checked against a strict pattern before they become SQL literals.

    Arguments:
        rule_drafts: the staged drafts relation (ref('stg_patas__rule_drafts'))
-#}
{% macro evaluated_predicate_rules(rule_drafts) -%}
    {%- if not execute -%}
        {{ return([]) }}
    {%- endif -%}
    {%- set existing = adapter.get_relation(
        database=rule_drafts.database, schema=rule_drafts.schema, identifier=rule_drafts.identifier
    ) -%}
    {%- if existing is none -%}
        {{ return([]) }}
    {%- endif -%}
    {%- set query -%}
        with latest as (
            select distinct on (rule_id)
                rule_id,
                evaluation_kind,
                sql_expression
            from {{ rule_drafts }}
            order by rule_id, rule_version desc
        )
        select rule_id, sql_expression
        from latest
        where evaluation_kind = 'predicate'
        order by rule_id
    {%- endset -%}
    {%- set rows = run_query(query) -%}
    {%- set rules = [] -%}
    {%- for row in rows -%}
        {%- if not modules.re.fullmatch('[A-Za-z0-9_.:-]{1,80}', row[0]) -%}
            {{ exceptions.raise_compiler_error('rule_drafts holds a rule id that is not a plain identifier: ' ~ (row[0] | tojson)) }}
        {%- endif -%}
        {%- if row[1] is none or (row[1] | trim) == '' -%}
            {{ exceptions.raise_compiler_error('predicate rule ' ~ row[0] ~ ' has no sql_expression') }}
        {%- endif -%}
        {%- do rules.append((row[0], row[1])) -%}
    {%- endfor -%}
    {{ return(rules) }}
{%- endmacro %}
