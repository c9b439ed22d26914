{#-
    Hits of predicate rules: (rule_id, message_id, window_name) for every message of the evaluated
    windows that satisfies a rule's predicate. Set-based: each scan of the messages evaluates a
    batch of predicates at once, as
        unnest(array[case when (<predicate 1>) then 'r_1' end, case when ... end]) as hit(rule_id)
    so N rules cost ceil(N / batch_size) scans, not N queries. Predicates are over the alias m
    (the message relation of docs/contracts.md).

    Arguments:
        rules: list of (rule_id, sql_expression), from evaluated_predicate_rules()
        messages: the message relation (ref('int_messages_enriched'))
        windowed: the window assignment relation (ref('int_messages_windowed'))
        windows: list of window names to evaluate on
        batch_size: predicates per scan
-#}
{% macro rule_predicate_hits(rules, messages, windowed, windows, batch_size=250) -%}
    {%- if rules | length == 0 -%}
        select
            null::text as rule_id,
            null::bigint as message_id,
            null::text as window_name
        where false
    {%- else -%}
        {%- for batch in rules | batch(batch_size | int) %}
        {%- if not loop.first %}

        union all

        {% endif %}
        select
            hit.rule_id,
            m.message_id,
            w.window_name
        from {{ messages }} as m
        inner join {{ windowed }} as w
            on m.message_id = w.message_id
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
