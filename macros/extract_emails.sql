{#- Emails as a sorted distinct text[] (python_steps.normalize.extract_emails), lower case.
    Arguments: deobfuscated - deobfuscate_text(prepare_text(...)). -#}
{% macro extract_emails(deobfuscated) -%}
    {{ return(adapter.dispatch('extract_emails', 'patas')(deobfuscated)) }}
{%- endmacro %}

{% macro default__extract_emails(deobfuscated) -%}
    {{ exceptions.raise_compiler_error('extract_emails needs a port for ' ~ target.type) }}
{%- endmacro %}

{% macro postgres__extract_emails(deobfuscated) -%}
array(
    select distinct r.m[1] collate "C"
    from regexp_matches(({{ deobfuscated }}), {{ text_pattern('email') }}, 'g') as r (m)
    order by 1
)
{%- endmacro %}
