{#-
    Hits of predicate rules: (rule_id, message_id, window_name) for every message of the evaluated
    windows that satisfies a rule's predicate; the window comes from the message's own columns
    (macro window_predicate, as in the view int_messages_windowed), so the messages are read once.
    Set-based: each scan of the messages evaluates a
    batch of predicates at once, as
        unnest(array[case when (<predicate 1>) then 'r_1' end, case when ... end]) as hit(rule_id)
    so N rules cost a few scans, not N queries. Predicates are over the alias m (the message
    relation of docs/contracts.md).

    Batching: at most batch_size predicates per scan, and at most max_regexes regular-expression
    matches per scan: Postgres caches only 32 compiled regexes per backend, and a scan whose row
    evaluates more than that recompiles them on every row (measured: ~30x slower). Regex-free
    predicates are packed first, then the regex ones; rule id order inside each group.

    Arguments:
        rules: list of (rule_id, sql_expression), from evaluated_predicate_rules()
        messages: the message relation (ref('int_messages_enriched'))
        windows: list of window names to evaluate on
        batch_size: predicates per scan
        max_regexes: regex matches per scan (keep below Postgres's cache of 32 compiled regexes)
-#}
{% macro rule_predicate_hits(rules, messages, windows, batch_size=250, max_regexes=30) -%}
    {%- set plain, regex = [], [] -%}
    {%- for rule_id, predicate in rules -%}
        {%- set n = predicate.count(' ~ ') + predicate.count(' ~* ') + predicate.count('regexp_') -%}
        {%- do (regex if n > 0 else plain).append((rule_id, predicate, n)) -%}
    {%- endfor -%}
    {%- set batches = [] -%}
    {%- set ns = namespace(current=[], regexes=0) -%}
    {%- for rule_id, predicate, n in plain + regex -%}
        {%- if ns.current and (ns.current | length >= batch_size | int or ns.regexes + n > max_regexes | int) -%}
            {%- do batches.append(ns.current) -%}
            {%- set ns.current = [] -%}
            {%- set ns.regexes = 0 -%}
        {%- endif -%}
        {%- set ns.current = ns.current + [(rule_id, predicate)] -%}
        {%- set ns.regexes = ns.regexes + n -%}
    {%- endfor -%}
    {%- if ns.current -%}
        {%- do batches.append(ns.current) -%}
    {%- endif -%}
    {%- if rules | length == 0 -%}
        select
            null::text as rule_id,
            null::bigint as message_id,
            null::text as window_name
        where false
    {%- else -%}
        {%- for batch in batches %}
        {%- if not loop.first %}

        union all

        {% endif %}
        select
            hit.rule_id,
            m.message_id,
            w.window_name
        from {{ messages }} as m
        cross join lateral (
            select {{ window_name_of('m') }} as window_name
        ) as w
        cross join lateral unnest(array[
            {%- for rule_id, predicate in batch %}
            case when ({{ predicate }}) then '{{ rule_id }}' end{{ ',' if not loop.last }}
            {%- endfor %}
        ]::text[]) as hit (rule_id)
        where
            w.window_name in ({% for w in windows %}'{{ w }}'{{ ', ' if not loop.last }}{% endfor %})
            and hit.rule_id is not null
        {%- endfor %}
    {%- endif %}
{%- endmacro %}
