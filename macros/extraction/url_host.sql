{#- The host of a canonical URL (python_steps.text.normalize.url_host). Arguments: url - a text
    expression (an extract_urls value). -#}
{% macro url_host(url) -%}
regexp_replace({{ url }}, {{ text_pattern('host') }}, '\1')
{%- endmacro %}
