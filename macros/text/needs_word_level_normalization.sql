{#- Whether normalize_prepared_text needs its general word-level steps on a prepared text: a word
    mixing Latin with Cyrillic/Greek letters (fold_homoglyphs), or a run of three identical
    characters to squeeze (squeeze_repeats) other than runs of 'w'. Where it is false,
    normalize_prepared_text(column, word_steps=false) gives the same text without their scalar
    subqueries: folding is a no-op, and squeezing the runs of 'w' leaves no run to squeeze. The
    same tests the two steps guard themselves with. Arguments: column - prepare_text output, a
    column. -#}
{% macro needs_word_level_normalization(column) -%}
(
    {{ column }} ~ {{ text_pattern('mixed_script') }}
    or (
        {{ column }} ~ {{ text_pattern('triple') }}
        and {{ column }} ~ {{ text_pattern('squeezable_triple') }}
        and (case when {{ column }} ~ 'www' then regexp_replace({{ column }}, 'w{3,}', 'ww', 'g') else {{ column }} end)
            ~ {{ text_pattern('squeezable_triple') }}
    )
)
{%- endmacro %}
