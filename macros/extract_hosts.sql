{#- Hosts of a URL array as a sorted distinct text[] (python_steps.normalize.url_host).
    Arguments: urls - extract_urls output. -#}
{% macro extract_hosts(urls) -%}
    {{ return(adapter.dispatch('extract_hosts', 'patas')(urls)) }}
{%- endmacro %}

{% macro default__extract_hosts(urls) -%}
    {{ exceptions.raise_compiler_error('extract_hosts needs a port for ' ~ target.type) }}
{%- endmacro %}

{% macro postgres__extract_hosts(urls) -%}
array(
    select distinct regexp_replace(u.url, {{ text_pattern('host') }}, '\1') collate "C"
    from unnest({{ urls }}) as u (url)
    order by 1
)
{%- endmacro %}
