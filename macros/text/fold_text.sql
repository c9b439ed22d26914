{#- The first half of prepare_text (python_steps.text.normalize.prepare_text): code points unassigned
    in Unicode 14 dropped, zero-width and bidi controls dropped, NFKC, ASCII lower-cased (lower()
    under the "C" collation folds ASCII only, whatever the database locale). Pure-ASCII text takes
    a short path (NFKC cannot change it). prepare_folded_text finishes the job; models compute
    this once per row (a lateral column) and pass it on, prepare_text composes the two.
    Arguments: column - a text column (referenced several times: pass a column). -#}
{% macro fold_text(column) -%}
case
    when {{ column }} ~ {{ text_pattern('ascii_only') }} then lower({{ column }} collate "C")
    else lower(
        normalize(
            regexp_replace(
                case
                    when {{ column }} ~ {{ text_pattern('common_only') }} then {{ column }}
                    else regexp_replace({{ column }}, {{ text_pattern('unassigned') }}, '', 'g')
                end,
                {{ text_pattern('invisible') }}, '', 'g'
            ),
            nfkc
        ) collate "C"
    )
end
{%- endmacro %}
