{#- Steps 2-4 of normalization (python_steps.normalize.normalize_prepared) over prepare_text
    output: repeated characters squeezed, homoglyphs folded, digit look-alikes between Latin
    letters folded (0->o, 1->l, 3->e, 5->s). Each step is guarded by a cheap test on the prepared
    text, which is enough: squeezing keeps every pair of adjacent distinct characters, so the
    script-mix and digit-run tests give the same answer before and after it.
    Arguments: column - prepare_text output, a column (referenced many times). -#}
{% macro normalize_prepared_text(column) -%}
    {{ return(adapter.dispatch('normalize_prepared_text', 'patas')(column)) }}
{%- endmacro %}

{% macro default__normalize_prepared_text(column) -%}
    {{ exceptions.raise_compiler_error('normalize_prepared_text needs a port for ' ~ target.type) }}
{%- endmacro %}

{% macro postgres__normalize_prepared_text(column) -%}
    {%- set squeezed = squeeze_repeats(column, column) -%}
    {%- set folded = fold_homoglyphs(squeezed, column) -%}
case
    when {{ column }} ~ {{ text_pattern('digit_run_check') }}
        then regexp_replace(regexp_replace(regexp_replace(regexp_replace(
            {{ folded }},
            {{ text_pattern('digit_0') }}, 'o', 'g'),
            {{ text_pattern('digit_1') }}, 'l', 'g'),
            {{ text_pattern('digit_3') }}, 'e', 'g'),
            {{ text_pattern('digit_5') }}, 's', 'g')
    else {{ folded }}
end
{%- endmacro %}
