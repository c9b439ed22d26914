{#- The second half of prepare_text (python_steps.text.normalize.prepare_text) over fold_text output:
    the upper-case letters beyond ASCII folded by fixed upper->lower tables per script block, then
    whitespace collapsed and trimmed.

    translate() costs O(text x from), and the tables hold about 650 letters, so the text is not
    translated against them: the upper-case letters it actually holds are picked out with one
    regex (regexp_replace of everything else; usually none or a few), mapped through the tables,
    and only those letters are translated in the text. Same result as translating against the
    whole table (the blocks are disjoint and every picked letter is in a table). Whitespace is
    collapsed first (the tables map letters to letters, so the order does not matter), and only
    when the text needs it (space_needed). Measured on the 349k non-ASCII texts
    of 1M generated messages: 25 s -> 6 s of one core for prepare_text (the earlier per-block
    tables, guarded by tests on the raw text, translated most Cyrillic texts against all seven).
    Arguments: folded - a fold_text column (referenced several times: pass a column). -#}
{% macro prepare_folded_text(folded) -%}
    {%- set upper_from = [] -%}
    {%- set lower_to = [] -%}
    {%- for b in ['latin1', 'latin_ext', 'greek', 'cyrillic', 'cyrillic_ext', 'armenian', 'latin_additional'] -%}
        {%- do upper_from.append(text_pattern('case_' ~ b ~ '_from')[1:-1]) -%}
        {%- do lower_to.append(text_pattern('case_' ~ b ~ '_to')[1:-1]) -%}
    {%- endfor -%}
    {%- set spaced -%}
case
        when {{ folded }} ~ {{ text_pattern('space_needed') }}
            then btrim(regexp_replace({{ folded }}, {{ text_pattern('space') }}, ' ', 'g'), ' ')
        else {{ folded }}
    end
    {%- endset -%}
    {%- set upper_letters -%}
regexp_replace({{ folded }}, '[^{{ upper_from | join('') }}]+', '', 'g')
    {%- endset -%}
case
    when {{ folded }} ~ '[{{ upper_from | join('') }}]' then translate(
        {{ spaced }},
        {{ upper_letters }},
        translate({{ upper_letters }}, '{{ upper_from | join('') }}', '{{ lower_to | join('') }}')
    )
    else {{ spaced }}
end
{%- endmacro %}
