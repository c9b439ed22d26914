{#- The stage-1 top fraction from var patas_suspiciousness_threshold: a number in (0, 1], or one of
    the named settings narrow (0.01), default (0.03), wide (0.05), explore (0.15). -#}
{% macro suspiciousness_threshold() -%}
    {%- set named = {'narrow': 0.01, 'default': 0.03, 'wide': 0.05, 'explore': 0.15} -%}
    {%- set value = var('patas_suspiciousness_threshold', 0.03) -%}
    {%- if value is string and value in named -%}
        {%- set value = named[value] -%}
    {%- endif -%}
    {%- set number = value | float -%}
    {%- if number <= 0 or number > 1 -%}
        {{ exceptions.raise_compiler_error('patas_suspiciousness_threshold must be in (0, 1] or one of ' ~ named.keys() | list ~ ', got ' ~ value) }}
    {%- endif -%}
    {{ number }}
{%- endmacro %}
