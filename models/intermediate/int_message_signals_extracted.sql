{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        indexes=[
            {'columns': ['signal_kind', 'signal_value']},
            {'columns': ['message_id']},
        ],
    )
}}

{#- One row per message x distinct signal (docs/contracts.md "Signals"). Incremental on
    ingestion batches, like the messages it reads. -#}

with

messages as (

    select * from {{ ref('int_messages_enriched') }}
    {% if is_incremental() %}
    where batch_id > (select coalesce(max(batch_id), 0) from {{ this }})
    {% endif %}

),

entity_signals as (

    {% for kind, column in [
        ('url', 'urls'), ('host', 'hosts'), ('domain', 'domains'), ('phone', 'phones'),
        ('short_code', 'short_codes'), ('handle', 'handles'), ('email', 'emails'), ('money', 'money'),
    ] %}
    select m.message_id, m.batch_id, '{{ kind }}' as signal_kind, v.signal_value
    from messages as m
    cross join lateral unnest(m.{{ column }}) as v (signal_value)
    where cardinality(m.{{ column }}) > 0
    union all
    {% endfor %}
    select m.message_id, m.batch_id, 'signature' as signal_kind, m.signature as signal_value
    from messages as m

),

ngram_signals as (

    select m.message_id, m.batch_id, 'ngram' as signal_kind, g.ngram as signal_value
    from messages as m
    cross join {{ extract_ngrams('m.normalized_text', 'g') }}

),

signals as (

    select * from entity_signals
    union all
    select * from ngram_signals

)

select
    message_id,
    signal_kind,
    signal_value,
    batch_id
from signals
