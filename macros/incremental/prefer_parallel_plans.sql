{#- Session settings for a heavy model (pre_hook) and their reset (post_hook, reset=true).
    Postgres prices regex and normalize() calls like any cheap function, so it keeps the
    per-message text work of stage 1 in one process; with parallel setup and tuple transfer
    priced at zero it hands the scan and the per-row work below the first plan level to parallel
    workers (figures: docs/benchmarks.md). -#}
{% macro prefer_parallel_plans(reset=false) -%}
    {%- if reset -%}
        reset parallel_setup_cost; reset parallel_tuple_cost
    {%- else -%}
        set parallel_setup_cost = 0; set parallel_tuple_cost = 0
    {%- endif -%}
{%- endmacro %}
