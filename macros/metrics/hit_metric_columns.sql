{#-
    The metric columns of one rule (or ruleset) on one window, from count columns already in scope:
    hit_count, spam_hit_count, ham_hit_count, window_message_count, window_spam_count,
    window_ham_count. Emits precision, recall, coverage, false_positive_rate, f1_score,
    precision_lower_bound, precision_upper_bound, false_positive_rate_upper_bound (doubles, 0-1;
    null where the denominator is 0). Formulas: DESIGN.md "Metrics"; Python twin:
    python_steps.metrics.compute_metrics (a test proves both give the same numbers).

    Arguments:
        alias: optional relation alias that qualifies the count columns
-#}
{% macro hit_metric_columns(alias=none) -%}
    {%- set a = (alias ~ '.') if alias else '' -%}
    {%- set precision -%}
        ({{ a }}spam_hit_count::double precision
            / nullif({{ a }}spam_hit_count + {{ a }}ham_hit_count, 0)::double precision)
    {%- endset -%}
    {%- set recall -%}
        ({{ a }}spam_hit_count::double precision / nullif({{ a }}window_spam_count, 0)::double precision)
    {%- endset -%}
    {{ precision }} as precision,
    {{ recall }} as recall,
    ({{ a }}hit_count::double precision / nullif({{ a }}window_message_count, 0)::double precision) as coverage,
    ({{ a }}ham_hit_count::double precision / nullif({{ a }}window_ham_count, 0)::double precision) as false_positive_rate,
    case
        when {{ precision }} is null or {{ recall }} is null then null
        when {{ precision }} + {{ recall }} = 0 then 0.0::double precision
        else 2.0::double precision * {{ precision }} * {{ recall }} / ({{ precision }} + {{ recall }})
    end as f1_score,
    {{ wilson_lower_bound(a ~ 'spam_hit_count', a ~ 'spam_hit_count + ' ~ a ~ 'ham_hit_count') }} as precision_lower_bound,
    {{ wilson_upper_bound(a ~ 'spam_hit_count', a ~ 'spam_hit_count + ' ~ a ~ 'ham_hit_count') }} as precision_upper_bound,
    {{ false_positive_rate_upper_bound(a ~ 'ham_hit_count', a ~ 'window_ham_count') }} as false_positive_rate_upper_bound
{%- endmacro %}
