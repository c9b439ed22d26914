{#- Runs of 3+ identical non-digit characters squeezed to two (python_steps.normalize: the
    pattern ([^0-9])\1\1+ -> \1\1). A quantified back reference is very slow in Postgres, so only
    texts holding a triple are rewritten, character by character.
    Arguments: column - a text column (referenced more than once). -#}
{% macro squeeze_repeats(column) -%}
    {{ return(adapter.dispatch('squeeze_repeats', 'patas')(column)) }}
{%- endmacro %}

{% macro default__squeeze_repeats(column) -%}
    {{ exceptions.raise_compiler_error('squeeze_repeats needs a port for ' ~ target.type) }}
{%- endmacro %}

{% macro postgres__squeeze_repeats(column) -%}
case
    when ({{ column }}) !~ {{ text_pattern('triple') }} then ({{ column }})
    else (
        select coalesce(string_agg(z.c, '' order by z.i), '')
        from (
            select
                s.c,
                s.i,
                lag(s.c, 1) over (order by s.i) as previous_1,
                lag(s.c, 2) over (order by s.i) as previous_2
            from regexp_split_to_table(({{ column }}), '') with ordinality as s (c, i)
        ) as z
        where not (z.c = z.previous_1 and z.c = z.previous_2 and z.c !~ {{ text_pattern('digit') }})
    )
end
{%- endmacro %}
