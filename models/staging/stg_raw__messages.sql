{{
    config(
        pre_hook="{{ prefer_parallel_plans() }}",
        post_hook="{{ prefer_parallel_plans(reset=true) }}",
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
    run reads only the batches it has not seen. Normalization is a per-row function of the text
    (no joins, no aggregates), done here once per message: prepared_text (the Unicode-clean,
    case-folded text entities are extracted from), normalized_text, its word tokens and the
    template signature. -#}

with

source as (

    select * from {{ source('raw', 'messages') }}
    {% if is_incremental() %}
    where batch_id > (select coalesce(max(batch_id), 0) from {{ this }})
    {% endif %}

),

prepared as (

    {#- offset 0 keeps each CTE a separate plan level, so a column computed here is computed once
        (not inlined into every expression that reads it); this bottom level runs in parallel
        workers. -#}
    select
        *,
        {{ prepare_text('text') }} as prepared_text
    from source
    offset 0

),

cleaned as (

    select
        *,
        {{ normalize_prepared_text('prepared_text') }} as normalized_text
    from prepared
    offset 0

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

        prepared_text,
        string_to_array(
            btrim(regexp_replace(normalized_text, {{ text_pattern('non_word') }}, ' ', 'g'), ' '), ' '
        ) as word_tokens,

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
