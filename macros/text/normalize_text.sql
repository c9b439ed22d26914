{#- The PATAS normalizer (python_steps.text.normalize.normalize_text, version NORMALIZER_VERSION):
    NFKC, case folding, zero-width/bidi removal, homoglyph and digit look-alike folding, squeezing,
    whitespace collapse. Arguments: column - a text SQL expression. For ad-hoc use (tests, rule
    compiler); models call prepare_text and normalize_prepared_text on stored columns. -#}
{% macro normalize_text(column) -%}
(
    select {{ normalize_prepared_text('p.prepared_text') }}
    from (
        select {{ prepare_text('r.raw_text') }} as prepared_text
        from (select ({{ column }}) as raw_text offset 0) as r
        offset 0
    ) as p
)
{%- endmacro %}
