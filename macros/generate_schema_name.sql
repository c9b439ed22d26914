{#- A model's +schema is used verbatim (staging, intermediate, marts), not prefixed with the
    target schema: warehouse consumers read marts.active_rules, whatever the target. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
