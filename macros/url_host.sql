{#- The host of a canonical URL (python_steps.text.normalize.url_host). Arguments: url - a text
    expression (an extract_urls value). -#}
{% macro url_host(url) -%}
    {{ return(adapter.dispatch('url_host', 'patas')(url)) }}
{%- endmacro %}

{% macro default__url_host(url) -%}
    {{ exceptions.raise_compiler_error('url_host needs a port for ' ~ target.type) }}
{%- endmacro %}

{% macro postgres__url_host(url) -%}
regexp_replace({{ url }}, {{ text_pattern('host') }}, '\1')
{%- endmacro %}
