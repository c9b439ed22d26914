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

{#- Incremental on ingestion batches: batch ids only grow and a batch is committed whole, so a
    run reads only the batches it has not seen. Normalization and entity extraction are per-row
    functions of the text (no joins, no aggregates), done here once per message. -#}

with

source as (

    select * from {{ source('raw', 'messages') }}
    {% if is_incremental() %}
    where batch_id > (select coalesce(max(batch_id), 0) from {{ this }})
    {% endif %}

),

prepared as (

    select
        *,
        {{ prepare_text('text') }} as prepared_text
    from source

),

cleaned as (

    select
        *,
        {{ normalize_prepared_text('prepared_text') }} as normalized_text,
        {{ deobfuscate_text('prepared_text') }} as deobfuscated_text
    from prepared

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
        normalized_text,
        {{ normalizer_version() }}::text as normalizer_version,
        {{ template_signature('normalized_text') }} as signature,
        nullif(meta ->> 'language', '') as language,
        nullif(meta ->> 'channel', '') as channel,
        meta,

        ---------- entities
        {{ extract_urls('deobfuscated_text') }} as urls,
        {{ extract_phones('prepared_text') }} as phones,
        {{ extract_short_codes('prepared_text') }} as short_codes,
        {{ extract_handles('deobfuscated_text') }} as handles,
        {{ extract_emails('deobfuscated_text') }} as emails,
        {{ extract_money('prepared_text') }} as money,

        ---------- labels and outcomes
        is_spam,
        tas_action,
        user_complaint,
        unbanned,

        ---------- timestamps
        event_at,
        ingested_at

    from cleaned

)

select * from renamed
