{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        indexes=[
            {'columns': ['message_id'], 'unique': True},
            {'columns': ['batch_id']},
        ],
    )
}}

{#- The message relation the rule compiler targets (docs/contracts.md "Message relation for
    rules"): staged messages plus registrable domains, split bucket and label. -#}

with

messages as (

    select * from {{ ref('stg_raw__messages') }}
    {% if is_incremental() %}
    where batch_id > (select coalesce(max(batch_id), 0) from {{ this }})
    {% endif %}

),

hosts as (

    select * from {{ ref('int_hosts_resolved') }}

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
        m.urls,
        {{ extract_hosts('m.urls') }} as hosts,
        array(
            select distinct h.registrable_domain collate "C"
            from unnest(m.urls) as u (url)
            inner join hosts as h
                on h.host = regexp_replace(u.url, {{ text_pattern('host') }}, '\1')
            where h.registrable_domain is not null
            order by 1
        ) as domains,
        m.phones,
        m.short_codes,
        m.handles,
        m.emails,
        m.money,

        ---------- labels and split
        m.is_spam,
        case
            when m.is_spam then 'spam'
            when not m.is_spam then 'ham'
            else 'unlabelled'
        end as label,
        {{ split_bucket('m.signature') }} as split_bucket,
        m.meta,

        ---------- timestamps
        m.event_at

    from messages as m

)

select * from enriched
