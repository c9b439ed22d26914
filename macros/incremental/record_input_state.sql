{% macro record_input_state(state) -%}
    insert into {{ input_state_table() }} (model_name, input_state, recorded_at)
    values ('{{ this.schema }}.{{ this.identifier }}', {{ state }}, clock_timestamp())
    on conflict (model_name) do update
        set input_state = excluded.input_state, recorded_at = excluded.recorded_at
{%- endmacro %}
