{% macro inputs_changed(state) -%}
    {%- if is_incremental() -%}
        ({{ stored_input_state() }} is distinct from {{ state }})
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}
