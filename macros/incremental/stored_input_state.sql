{% macro stored_input_state() -%}
    (select s.input_state from {{ input_state_table() }} as s where s.model_name = '{{ this.schema }}.{{ this.identifier }}')
{%- endmacro %}
