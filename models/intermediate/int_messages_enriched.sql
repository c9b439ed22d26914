{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        unlogged=True,
        pre_hook=[
            "{{ rebuild_when_code_changes() }}",
            "set local jit = off",
            "set local work_mem = '64MB'",
        ],
        post_hook="{{ record_code_version() }}",
        on_schema_change='fail',
        indexes=[
            {'columns': ['message_id'], 'unique': True},
            {'columns': ['batch_id']},
        ],
    )
}}

{#- The message relation the rule compiler targets (docs/contracts.md "Message relation for
    rules"): staged messages with their entity arrays (gathered from the extracted signals),
    split bucket and label. Incremental on ingestion batches. -#}

with

messages as (

    select * from {{ ref('int_messages_normalized') }}
    {% if is_incremental() %}
    where batch_id > (select coalesce(max(batch_id), 0) from {{ this }})
    {% endif %}

),

entities as (

    select
        message_id,
        {% for kind, column in [
            ('url', 'urls'), ('host', 'hosts'), ('domain', 'domains'), ('phone', 'phones'),
            ('short_code', 'short_codes'), ('handle', 'handles'), ('email', 'emails'),
        ] %}
        array_agg(signal_value collate "C" order by signal_value collate "C")
            filter (where signal_kind = '{{ kind }}') as {{ column }}{{ ',' if not loop.last }}
        {% endfor %}
    from {{ ref('int_message_signals_extracted') }}
    where signal_kind in ('url', 'host', 'domain', 'phone', 'short_code', 'handle', 'email')
    {% if is_incremental() %}
        and batch_id > (select coalesce(max(batch_id), 0) from {{ this }})
    {% endif %}
    group by message_id

),

enriched as (

    select
        ---------- ids
        m.message_id,
        m.external_id,
        m.batch_id,
        m.sender_id,
        m.chat_id,

        ---------- text
        m.text,
        m.normalized_text,
        m.normalizer_version,
        m.signature,
        m.language,

        ---------- entities (sorted, distinct, never null)
        {% for column in ['urls', 'hosts', 'domains', 'phones', 'short_codes', 'handles', 'emails'] %}
        coalesce(e.{{ column }}, '{}'::text[]) as {{ column }},
        {% endfor %}

        ---------- labels and split
        m.is_spam,
        {{ message_label('m.is_spam') }} as label,
        {{ split_bucket('m.signature') }} as split_bucket,
        m.meta,

        ---------- timestamps
        m.event_at

    from messages as m
    left join entities as e
        on e.message_id = m.message_id

)

select * from enriched
