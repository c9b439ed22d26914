{#- The normalizer version recorded with every staged message; must equal
    python_steps.text.normalize.NORMALIZER_VERSION (a unit test checks). Bump both together. -#}
{% macro normalizer_version() -%}
'n4'
{%- endmacro %}
