{{ config(meta={"dagster": {"ref": {"name": "int_message_signals_extracted"}}}) }}

{#- Keys of the stage-1 signal tables: one row per message x signal in
    int_message_signals_extracted and one row per signal in signal_label_counts, each enforced at
    build time by a valid unique index on exactly its key (checked here in the catalog, not by a
    GROUP BY over millions of rows); one row per signal in stage1_candidates (a few thousand rows,
    grouped). Returns a row per missing index or duplicated key. -#}

with

keyed as (

    select
        'int_message_signals_extracted' as model,
        '{{ ref('int_message_signals_extracted') }}'::regclass as relation,
        array['message_id', 'signal_kind', 'signal_value']::name[] as key_columns

    union all

    select
        'signal_label_counts' as model,
        '{{ ref('signal_label_counts') }}'::regclass as relation,
        array['signal_kind', 'signal_value']::name[] as key_columns

),

unique_indexes as (

    select
        i.indrelid as relation,
        array(
            select a.attname
            from unnest(i.indkey) with ordinality as k (attnum, position)
            inner join pg_attribute as a on a.attrelid = i.indrelid and a.attnum = k.attnum
            order by k.position
        ) as key_columns
    from pg_index as i
    where i.indisunique and i.indisvalid and i.indpred is null

)

select
    keyed.model,
    null::bigint as message_id,
    null::text as signal_kind,
    'no valid unique index on (' || array_to_string(keyed.key_columns, ', ') || ')' as signal_value,
    null::bigint as row_count
from keyed
where not exists (
    select 1 from unique_indexes as u
    where u.relation = keyed.relation and u.key_columns = keyed.key_columns
)

union all

select
    'stage1_candidates' as model,
    null as message_id,
    signal_kind,
    signal_value,
    count(*) as row_count
from {{ ref('stage1_candidates') }}
group by signal_kind, signal_value
having count(*) > 1
