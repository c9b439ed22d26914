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
