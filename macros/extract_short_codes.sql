{#- Premium short codes (4-6 digits after text/txt/send/sms/reply ... to) as a sorted distinct
    text[] (python_steps.normalize.extract_short_codes). Arguments: prepared - prepare_text output. -#}
{% macro extract_short_codes(prepared) -%}
    {{ return(adapter.dispatch('extract_short_codes', 'patas')(prepared)) }}
{%- endmacro %}

{% macro default__extract_short_codes(prepared) -%}
    {{ exceptions.raise_compiler_error('extract_short_codes needs a port for ' ~ target.type) }}
{%- endmacro %}

{% macro postgres__extract_short_codes(prepared) -%}
array(
    select distinct r.m[1] collate "C"
    from regexp_matches(({{ prepared }}), {{ text_pattern('short_code') }}, 'g') as r (m)
    order by 1
)
{%- endmacro %}
