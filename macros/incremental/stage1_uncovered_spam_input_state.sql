{% macro stage1_uncovered_spam_input_state() -%}
    {{ input_state(
        batched=[ref('int_message_signals_extracted'), ref('int_messages_enriched')],
        digests=[(ref('stage1_candidates'), "signal_kind || chr(31) || signal_value")],
        vars=stage1_window_vars(),
    ) }}
{%- endmacro %}
