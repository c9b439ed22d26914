{#- Staging: rename and cast raw.messages, nothing else (a view; the text work is
    int_messages_normalized). -#}

{{ config(materialized='view') }}

with

source as (

    select * from {{ source('raw', 'messages') }}

),

renamed as (

    select
        ---------- ids
        message_id,
        external_id,
        batch_id,
        source_line,
        nullif(meta ->> 'sender', '') as sender_id,
        nullif(meta ->> 'chat', '') as chat_id,

        ---------- text
        text,
        nullif(meta ->> 'language', '') as language,
        nullif(meta ->> 'channel', '') as channel,
        meta,

        ---------- labels and outcomes
        is_spam,
        tas_action,
        user_complaint,
        unbanned,

        ---------- timestamps
        event_at,
        ingested_at

    from source

)

select * from renamed
