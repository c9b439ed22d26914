{#- Word 1..3 grams of normalized text as rows (python_steps.text.normalize.ngrams): tokens are runs of
    word characters; an n-gram may not start or end with a stop word (reference.stop_words) or a
    bare number. Emits a FROM-clause item: a lateral subquery with one column, ngram, distinct per
    message. Arguments: normalized - normalized text column; alias - the subquery alias. -#}
{% macro extract_ngrams(normalized, alias) -%}
    {{ return(adapter.dispatch('extract_ngrams', 'patas')(normalized, alias)) }}
{%- endmacro %}

{% macro default__extract_ngrams(normalized, alias) -%}
    {{ exceptions.raise_compiler_error('extract_ngrams needs a port for ' ~ target.type) }}
{%- endmacro %}

{% macro postgres__extract_ngrams(normalized, alias) -%}
lateral (
    select distinct array_to_string(t.tokens[g.i:g.i + g.n - 1], ' ') as ngram
    from (
        select
            string_to_array(btrim(regexp_replace({{ normalized }}, {{ text_pattern('non_word') }}, ' ', 'g'), ' '), ' ')
                as tokens
    ) as t
    cross join lateral (
        select i, n
        from generate_series(1, cardinality(t.tokens)) as i
        cross join generate_series(1, 3) as n
        where i + n - 1 <= cardinality(t.tokens)
    ) as g
    where t.tokens[g.i] !~ {{ text_pattern('all_digits') }}
        and t.tokens[g.i + g.n - 1] !~ {{ text_pattern('all_digits') }}
        and t.tokens[g.i] not in (select word from {{ ref('stop_words') }})
        and t.tokens[g.i + g.n - 1] not in (select word from {{ ref('stop_words') }})
) as {{ alias }}
{%- endmacro %}
