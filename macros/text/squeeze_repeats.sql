{#- Runs of 3+ identical characters other than digits and '.' squeezed to two
    (python_steps.text.normalize: ([^0-9.])\1\1+ -> \1\1). A quantified back reference is very slow in
    Postgres, so only texts holding such a triple are rewritten, character by character.
    Arguments: column - the text to squeeze; check_column - a column on which the triple test is
    run (the same text, or one with the same runs), referenced twice. -#}
{% macro squeeze_repeats(column, check_column) -%}
case
    when {{ check_column }} ~ {{ text_pattern('triple') }} and {{ check_column }} ~ {{ text_pattern('squeezable_triple') }} then (
        select coalesce(string_agg(z.c, '' order by z.i), '')
        from (
            select
                s.c,
                s.i,
                lag(s.c, 1) over (order by s.i) as previous_1,
                lag(s.c, 2) over (order by s.i) as previous_2
            from regexp_split_to_table({{ column }}, '') with ordinality as s (c, i)
        ) as z
        where not coalesce(z.c = z.previous_1 and z.c = z.previous_2 and z.c !~ '[0-9.]', false)
    )
    else {{ column }}
end
{%- endmacro %}
