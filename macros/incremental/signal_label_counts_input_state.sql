{#- Input states (macro input_state) of the stage-1 marts that rebuild only when their inputs
    change; each is used by its model's pre-hook and by the model itself. -#}
{% macro signal_label_counts_input_state() -%}
    {{ input_state(
        batched=[ref('int_message_signals_extracted'), ref('int_messages_normalized')],
        vars=stage1_window_vars(),
    ) }}
{%- endmacro %}
