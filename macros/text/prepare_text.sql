{#- Unicode-clean, case-folded, whitespace-collapsed text (python_steps.text.normalize.prepare_text):
    code points unassigned in Unicode 14 dropped, zero-width and bidi controls dropped, NFKC,
    explicit locale-independent case folding, whitespace collapsed and trimmed. Entities are
    extracted from this text. prepare_folded_text(fold_text(column)), as one expression for ad-hoc
    use (tests, values tests); models compute fold_text once per row as a lateral column and
    call prepare_folded_text on it (a scalar subquery with offset 0, as here, is evaluated in the
    leader, not in parallel workers).
    Arguments: column - a text SQL expression. -#}
{% macro prepare_text(column) -%}
(
    select {{ prepare_folded_text('f.folded') }}
    from (
        select {{ fold_text('r.raw_text') }} as folded
        from (select ({{ column }}) as raw_text offset 0) as r
        offset 0
    ) as f
)
{%- endmacro %}
