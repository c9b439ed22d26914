{#-
    Models that rebuild only when their inputs change keep their input state in one bookkeeping
    table beside them, <schema>.model_input_states (model_name, input_state, recorded_at), written
    in the same transaction as the model (so an empty result is remembered too). Usage:
        pre_hook:  rebuild_when_inputs_change(state)   -- on an incremental run whose state
                   changed, delete the stored rows (all of them)
        model:     where inputs_changed(state)          -- compute only then
        post_hook: record_input_state(state)
    with state the model's input_state(...) expression. An unchanged input costs three state
    computations (index probes and small digests) and nothing else.
-#}
{% macro input_state_table() -%}
    {{ this.schema }}.model_input_states
{%- endmacro %}
