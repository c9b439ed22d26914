{#-
    The distinct texts of a batch-incremental stage-1 model's new messages, as a table of their own
    for the length of the model's transaction (pre-hook create_distinct_texts, post-hook
    drop_distinct_texts), when the model deduplicates texts (macro dedupe_message_texts). A table,
    not a CTE: Postgres reads a CTE in one process, a table in its parallel workers, so the
    per-text work that reads it runs on every core (docs/benchmarks.md). Unlogged and dropped
    before the commit (a failed build rolls it back): it is never seen outside the model's build.
-#}
{% macro distinct_texts_relation() -%}
    {{ this.schema }}.{{ this.identifier }}__texts
{%- endmacro %}

{% macro create_distinct_texts(source_relation, columns) -%}
    {#- Exactly when the model's compiled SQL reads the table: its choice (dedupe_message_texts, a
        sample taken when the model was compiled) is not taken again here, where an earlier hook
        may have truncated the model or a batch may have landed since. -#}
    {%- if distinct_texts_relation() in (sql or '') -%}
    drop table if exists {{ distinct_texts_relation() }};
    create unlogged table {{ distinct_texts_relation() }} as
    select row_number() over () as text_id, t.*
    from (
        select {{ columns | join(', ') }}
        from {{ source_relation }}
        {%- if is_incremental() %}
        where batch_id > (select coalesce(max(batch_id), 0) from {{ this }})
        {%- endif %}
        group by {{ columns | join(', ') }}
    ) as t;
    analyze {{ distinct_texts_relation() }};
    {#- the messages join their text by a hash on it, not a sort of every message -#}
    set local enable_mergejoin = off
    {%- endif -%}
{%- endmacro %}

{% macro drop_distinct_texts() -%}
    drop table if exists {{ distinct_texts_relation() }}
{%- endmacro %}
