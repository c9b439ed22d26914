{#- The normalizer version recorded with every staged message; must equal
    python_steps.text.normalize.NORMALIZER_VERSION (a unit test checks). Bump both together. -#}
{% macro normalizer_version() -%}
    {{ return(adapter.dispatch('normalizer_version', 'patas')()) }}
{%- endmacro %}

{% macro default__normalizer_version() -%}
'n4'
{%- endmacro %}

{% macro postgres__normalizer_version() -%}
{{ default__normalizer_version() }}
{%- endmacro %}
