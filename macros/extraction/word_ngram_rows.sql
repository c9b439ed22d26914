{#- Word 1-3 grams (python_steps.text.normalize.ngrams) of the word_tokens of a relation, as a SELECT of
    (<columns>, ngram) rows (columns: message_id, batch_id unless given). An n-gram may not start or end with a stop word
    (reference.stop_words) or a bare number. One row per token position with the next two
    tokens (null past the end): unnest over shifted copies of the array zips them in one pass.
    Arguments: relation - a CTE / relation with word_tokens and the carried columns;
    first_words - optional FROM item with one column (a relation, or e.g. unnest(<array>)):
    only positions whose first token is in it are expanded (a probe: every kept n-gram's first
    word is itself a kept unigram); first_occurrences - true to emit each n-gram once per
    message (its first occurrence: no earlier position starts the same tokens), so the rows are
    distinct per message without a DISTINCT over all of them (which runs after the Gather, in
    one process); columns - the relation's columns carried to each row. -#}
{% macro word_ngram_rows(relation, first_words=none, first_occurrences=false, columns=['message_id', 'batch_id']) -%}
    select {% for c in columns %}p.{{ c }}, {% endfor %}v.ngram
    from (
        select {% for c in columns if c != 'word_tokens' %}m.{{ c }}, {% endfor %}m.word_tokens, u.t1, u.t2, u.t3, u.i
        from {{ relation }} as m
        cross join lateral unnest(m.word_tokens, m.word_tokens[2:], m.word_tokens[3:])
            with ordinality as u (t1, t2, t3, i)
    ) as p
    {%- if first_words is not none %}
    inner join {{ first_words }} as fw (word)
        on fw.word = p.t1
    {%- else %}
    left join (select word, true as is_stop from {{ ref('stop_words') }}) as s1
        on s1.word = p.t1
    {%- endif %}
    left join (select word, true as is_stop from {{ ref('stop_words') }}) as s2
        on s2.word = p.t2
    left join (select word, true as is_stop from {{ ref('stop_words') }}) as s3
        on s3.word = p.t3
    cross join lateral (
        values
            (p.t1, true, 1),
            (p.t1 || ' ' || p.t2, not coalesce(s2.is_stop, false) and p.t2 !~ {{ text_pattern('all_digits') }}, 2),
            (p.t1 || ' ' || p.t2 || ' ' || p.t3, not coalesce(s3.is_stop, false) and p.t3 !~ {{ text_pattern('all_digits') }}, 3)
    ) as v (ngram, is_last_token_ok, n)
    where v.is_last_token_ok
        and v.ngram is not null
        {%- if first_words is none %}
        and not coalesce(s1.is_stop, false)
        and p.t1 !~ {{ text_pattern('all_digits') }}
        {%- endif %}
        {%- if first_occurrences %}
        {#- an earlier occurrence (at j < i) lies within tokens 1 .. i + n - 2; tokens hold no
            space, so a space-delimited search of the n-gram there finds exactly those #}
        and (
            array_position(p.word_tokens, p.t1) = p.i
            or strpos(
                ' ' || array_to_string(p.word_tokens[1:p.i + v.n - 2], ' ') || ' ',
                ' ' || v.ngram || ' '
            ) = 0
        )
        {%- endif %}
{%- endmacro %}
