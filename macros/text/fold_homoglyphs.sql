{#- Homoglyph folding (python_steps.text.normalize.fold_homoglyphs): inside a word that mixes Latin
    with Cyrillic/Greek letters, look-alikes of the minority script are folded into the majority
    script; single-script words are untouched (Russian stays Russian).
    Arguments: column - case-folded text; check_column - a column with the same script mix (the
    prepared text), tested first so most rows skip the work. -#}
{% macro fold_homoglyphs(column, check_column=none) -%}
case
    when {{ check_column or column }} !~ {{ text_pattern('mixed_script') }} then ({{ column }})
    else (
        select string_agg(
            case
                when w.latin_count = 0 or w.latin_count = length(w.word) then w.word
                when w.latin_count >= length(w.word) - w.latin_count
                    then translate(w.word, {{ text_pattern('to_latin_from') }}, {{ text_pattern('to_latin_to') }})
                when length(regexp_replace(w.word, {{ text_pattern('not_cyrillic') }}, '', 'g'))
                    >= length(regexp_replace(w.word, {{ text_pattern('not_greek') }}, '', 'g'))
                    then translate(w.word, {{ text_pattern('to_cyrillic_from') }}, {{ text_pattern('to_cyrillic_to') }})
                else w.word
            end,
            '' order by w.word_no
        )
        from (
            select
                r.m[1] as word,
                r.word_no,
                length(regexp_replace(r.m[1], {{ text_pattern('not_latin') }}, '', 'g')) as latin_count
            from regexp_matches(({{ column }}), {{ text_pattern('script_word_or_gap') }}, 'g')
                with ordinality as r (m, word_no)
        ) as w
    )
end
{%- endmacro %}
