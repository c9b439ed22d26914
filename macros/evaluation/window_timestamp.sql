{#- A window bound var as a timestamptz literal. The value must look like an ISO timestamp
    (python_steps.mining.windows.RunWindows writes them); anything else fails compilation, so a var can
    never inject SQL. Arguments: name - the var name, e.g. 'patas_mining_start'. -#}
{% macro window_timestamp(name) -%}
    {%- set value = var(name) -%}
    {%- if value is none or not modules.re.fullmatch('[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9:.]+)?(Z|[+-][0-9]{2}(:?[0-9]{2})?)?', value | string) -%}
        {{ exceptions.raise_compiler_error('var ' ~ name ~ ' must be an ISO timestamp, got ' ~ value) }}
    {%- endif -%}
    '{{ value }}'::timestamptz
{%- endmacro %}
