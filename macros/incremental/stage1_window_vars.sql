{% macro stage1_window_vars() -%}
    {{ return([
        'patas_split_mode', 'patas_mining_start', 'patas_mining_end',
        'patas_evaluation_start', 'patas_evaluation_end', 'patas_evaluation_share',
    ]) }}
{%- endmacro %}
