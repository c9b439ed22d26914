{#- Steps 2-4 of normalization (python_steps.text.normalize.normalize_prepared) over prepare_text
    output: repeated characters squeezed, homoglyphs folded, digit look-alikes between Latin
    letters folded (0->o, 1->l, 3->e, 5->s). Each step is guarded by a cheap test on the prepared
    text, which is enough: squeezing keeps every pair of adjacent distinct characters, so the
    script-mix and digit-run tests give the same answer before and after it.
    Arguments: column - prepare_text output, a column (referenced many times); word_steps -
    false leaves homoglyph folding out and squeezes runs of 'w' only (the general steps hold
    scalar subqueries, which keep an expression out of parallel workers; 'www' of URLs is by far
    the most common run): the same result for a text where needs_word_level_normalization is
    false. -#}
{% macro normalize_prepared_text(column, word_steps=true) -%}
    {%- if word_steps -%}
        {%- set folded = fold_homoglyphs(squeeze_repeats(column, column), column) -%}
    {%- else -%}
        {%- set folded -%}
            (case when {{ column }} ~ 'www' then regexp_replace({{ column }}, 'w{3,}', 'ww', 'g') else {{ column }} end)
        {%- endset -%}
    {%- endif -%}
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
