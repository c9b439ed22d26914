{#- Session settings for a heavy model (pre_hook) and their reset (post_hook, reset=true).
    Postgres prices regex and normalize() calls like any cheap function, so it keeps the
    per-message text work of stage 1 in one process; with parallel setup and tuple transfer
    priced at zero it hands the scan and the per-row work below the first plan level to parallel
    workers (measured: staging 8.0 s -> 5.5 s per 100k messages on 2 cores). -#}
{% macro prefer_parallel_plans(reset=false) -%}
    {{ return(adapter.dispatch('prefer_parallel_plans', 'patas')(reset)) }}
{%- endmacro %}

{% macro default__prefer_parallel_plans(reset=false) -%}
{%- endmacro %}

{% macro postgres__prefer_parallel_plans(reset=false) -%}
    {%- if reset -%}
        reset parallel_setup_cost; reset parallel_tuple_cost
    {%- else -%}
        set parallel_setup_cost = 0; set parallel_tuple_cost = 0
    {%- endif -%}
{%- endmacro %}
