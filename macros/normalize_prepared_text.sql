{#- Steps 2-5 of normalization (python_steps.normalize.normalize_prepared) over prepare_text
    output: homoglyphs, digit look-alikes between Latin letters (0->o, 1->l, 3->e, 5->s), runs of
    3+ identical non-digit characters squeezed to two, whitespace collapsed.
    Arguments: column - prepare_text output (a column). -#}
{% macro normalize_prepared_text(column) -%}
    {{ return(adapter.dispatch('normalize_prepared_text', 'patas')(column)) }}
{%- endmacro %}

{% macro default__normalize_prepared_text(column) -%}
    {{ exceptions.raise_compiler_error('normalize_prepared_text needs a port for ' ~ target.type) }}
{%- endmacro %}

{% macro postgres__normalize_prepared_text(column) -%}
(
    select btrim(regexp_replace({{ squeeze_repeats('d.digits_folded') }}, {{ text_pattern('space') }}, ' ', 'g'), ' ')
    from (
        select
            case
                when h.folded !~ {{ text_pattern('digit_run_check') }} then h.folded
                else regexp_replace(regexp_replace(regexp_replace(regexp_replace(
                    h.folded,
                    {{ text_pattern('digit_0') }}, 'o', 'g'),
                    {{ text_pattern('digit_1') }}, 'l', 'g'),
                    {{ text_pattern('digit_3') }}, 'e', 'g'),
                    {{ text_pattern('digit_5') }}, 's', 'g')
            end as digits_folded
        from (select {{ fold_homoglyphs(column) }} as folded offset 0) as h
        offset 0
    ) as d
)
{%- endmacro %}
