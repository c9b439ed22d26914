{#- Input states (macro input_state) of the stage-1 marts that rebuild only when their inputs
    change; each is used by its model's pre-hook and by the model itself. -#}

{% macro signal_label_counts_input_state() -%}
    {{ input_state(
        batched=[ref('int_message_signals_extracted'), ref('int_messages_enriched')],
        vars=stage1_window_vars(),
    ) }}
{%- endmacro %}

{% macro stage1_uncovered_spam_input_state() -%}
    {{ input_state(
        batched=[ref('int_message_signals_extracted'), ref('int_messages_enriched')],
        digests=[(ref('stage1_candidates'), "signal_kind || chr(31) || signal_value")],
        vars=stage1_window_vars(),
    ) }}
{%- endmacro %}

{#- The seeds by content, not identity: every pipeline run reloads them (a new file node). -#}
{% macro int_hosts_resolved_input_state() -%}
    {{ input_state(
        batched=[ref('int_message_signals_extracted')],
        digests=[
            (ref('public_suffixes'), "suffix || chr(31) || rule_kind"),
            (ref('link_shorteners'), "domain"),
        ],
    ) }}
{%- endmacro %}

{% macro stage1_window_vars() -%}
    {{ return([
        'patas_split_mode', 'patas_mining_start', 'patas_mining_end',
        'patas_evaluation_start', 'patas_evaluation_end', 'patas_evaluation_share',
    ]) }}
{%- endmacro %}
