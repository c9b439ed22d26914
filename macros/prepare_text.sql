{#- Unicode-clean, case-folded, whitespace-collapsed text (python_steps.normalize.prepare_text):
    code points unassigned in Unicode 14 dropped, zero-width and bidi controls dropped, NFKC,
    explicit locale-independent case folding (lower() under the "C" collation folds ASCII only;
    fixed upper->lower tables per block, applied only when the text holds such a letter, fold the
    rest), whitespace collapsed and trimmed. Entities are extracted from this text.
    Arguments: column - a text column (referenced twice: pass a column, not a costly expression). -#}
{% macro prepare_text(column) -%}
    {{ return(adapter.dispatch('prepare_text', 'patas')(column)) }}
{%- endmacro %}

{% macro default__prepare_text(column) -%}
    {{ exceptions.raise_compiler_error('prepare_text needs a port for ' ~ target.type) }}
{%- endmacro %}

{% macro postgres__prepare_text(column) -%}
    {%- set blocks = ['latin1', 'latin_ext', 'greek', 'cyrillic', 'cyrillic_ext', 'armenian', 'latin_additional'] -%}
(
    select btrim(regexp_replace(
        translate(
            lower(n.nfkc_text collate "C"),
            concat(
                {%- for b in blocks %}
                case when n.nfkc_text ~ {{ text_pattern('case_' ~ b ~ '_check') }} then {{ text_pattern('case_' ~ b ~ '_from') }} end{{ ',' if not loop.last }}
                {%- endfor %}
            ),
            concat(
                {%- for b in blocks %}
                case when n.nfkc_text ~ {{ text_pattern('case_' ~ b ~ '_check') }} then {{ text_pattern('case_' ~ b ~ '_to') }} end{{ ',' if not loop.last }}
                {%- endfor %}
            )
        ),
        {{ text_pattern('space') }}, ' ', 'g'
    ), ' ')
    from (
        select normalize(
            regexp_replace(
                case
                    when ({{ column }}) ~ {{ text_pattern('common_only') }} then ({{ column }})
                    else regexp_replace(({{ column }}), {{ text_pattern('unassigned') }}, '', 'g')
                end,
                {{ text_pattern('invisible') }}, '', 'g'
            ),
            nfkc
        ) as nfkc_text
        offset 0  -- an optimization fence: without it the planner inlines nfkc_text 15 times
    ) as n
)
{%- endmacro %}
