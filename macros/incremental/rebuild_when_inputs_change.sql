{% macro rebuild_when_inputs_change(state) -%}
    create table if not exists {{ input_state_table() }} (
        model_name text primary key,
        input_state text not null,
        recorded_at timestamptz not null
    );
    {%- if is_incremental() %}
    delete from {{ this }} where {{ stored_input_state() }} is distinct from {{ state }}
    {%- endif %}
{%- endmacro %}
