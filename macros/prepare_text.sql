{#- Unicode-clean, case-folded, whitespace-collapsed text (python_steps.normalize.prepare_text):
    code points unassigned in Unicode 14 dropped, zero-width and bidi controls dropped, NFKC,
    explicit locale-independent case folding, whitespace collapsed and trimmed. Entities are
    extracted from this text.

    Case folding: lower() under the "C" collation folds ASCII only, whatever the database locale;
    fixed upper->lower tables per script block (translate()) fold the rest. translate() costs
    O(text x table), so a block's table is used only when the raw text holds a code point whose
    NFKC has an upper-case letter of that block (a cheap regex test on the raw column).
    Pure-ASCII text takes a short path (NFKC and the tables cannot change it).

    Arguments: column - a text column (referenced many times: pass a column, not an expression). -#}
{% macro prepare_text(column) -%}
    {{ return(adapter.dispatch('prepare_text', 'patas')(column)) }}
{%- endmacro %}

{% macro default__prepare_text(column) -%}
    {{ exceptions.raise_compiler_error('prepare_text needs a port for ' ~ target.type) }}
{%- endmacro %}

{% macro postgres__prepare_text(column) -%}
    {%- set blocks = ['latin1', 'latin_ext', 'greek', 'cyrillic', 'cyrillic_ext', 'armenian', 'latin_additional'] -%}
case
    when {{ column }} ~ {{ text_pattern('ascii_only') }} then
        case
            when {{ column }} ~ {{ text_pattern('space_needed') }}
                then btrim(regexp_replace(lower({{ column }} collate "C"), {{ text_pattern('space') }}, ' ', 'g'), ' ')
            else lower({{ column }} collate "C")
        end
    else btrim(regexp_replace(
        translate(
            lower(
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
            ),
            concat(
                {%- for b in blocks %}
                case when {{ column }} ~ {{ text_pattern('case_' ~ b ~ '_check') }} then {{ text_pattern('case_' ~ b ~ '_from') }} end{{ ',' if not loop.last }}
                {%- endfor %}
            ),
            concat(
                {%- for b in blocks %}
                case when {{ column }} ~ {{ text_pattern('case_' ~ b ~ '_check') }} then {{ text_pattern('case_' ~ b ~ '_to') }} end{{ ',' if not loop.last }}
                {%- endfor %}
            )
        ),
        {{ text_pattern('space') }}, ' ', 'g'
    ), ' ')
end
{%- endmacro %}
