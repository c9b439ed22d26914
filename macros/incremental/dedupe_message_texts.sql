{#-
    Whether int_messages_normalized normalizes each distinct text of the new messages once (true) or
    every message's text in the parallel workers (false). Var patas_dedupe_texts: true, false or
    'auto' (default): dedupe when the first 20,000 new messages hold fewer than half as many
    distinct texts (spam campaigns and generated corpora repeat texts: 1M generated messages
    hold 90k; the UCI SMS data is 93% distinct). Both paths give the same rows (every staged
    text column is a function of the text), so the choice only moves time: deduplicated, the
    work runs once per distinct text (macro create_distinct_texts). Read at run time with
    one small query; at parse time (no database) and in unit tests the answer is false.
-#}
{% macro dedupe_message_texts() -%}
    {%- set setting = var('patas_dedupe_texts', 'auto') -%}
    {%- if setting in (true, 'true') -%}
        {{ return(true) }}
    {%- elif setting in (false, 'false') -%}
        {{ return(false) }}
    {%- elif setting != 'auto' -%}
        {{ exceptions.raise_compiler_error("patas_dedupe_texts must be true, false or 'auto', got " ~ setting) }}
    {%- endif -%}
    {%- if not execute or model.resource_type == 'unit_test' -%}
        {#- parse time, or a unit test (its source is a fixture CTE, not a relation) -#}
        {{ return(false) }}
    {%- endif -%}
    {%- set sample_sql -%}
        select count(*) as sampled, count(distinct md5(s.text)) as distinct_texts
        from (
            select m.text
            from {{ source('raw', 'messages') }} as m
            {%- if is_incremental() %}
            where m.batch_id > (select coalesce(max(t.batch_id), 0) from {{ this }} as t)
            {%- endif %}
            limit 20000
        ) as s
    {%- endset -%}
    {%- set row = run_query(sample_sql).rows[0] -%}
    {{ return(row['sampled'] > 0 and row['distinct_texts'] * 2 < row['sampled']) }}
{%- endmacro %}
