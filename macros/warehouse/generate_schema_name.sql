{#- A model's +schema is used verbatim (staging, intermediate, marts), not prefixed with the
    target schema: warehouse consumers read marts.active_rules, whatever the target. Every model
    passes here, so this is also where the project says, once, that its SQL is Postgres SQL
    (the macros carry no per-adapter variants). -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if target.type != 'postgres' -%}
        {{ exceptions.raise_compiler_error("PATAS's SQL is written for Postgres; the " ~ target.type ~ " adapter is not supported yet (docs/architecture.md)") }}
    {%- endif -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
