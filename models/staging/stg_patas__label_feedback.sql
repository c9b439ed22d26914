with

source as (

    select * from {{ source('patas', 'label_feedback') }}

),

renamed as (

    select
        -- ids
        feedback_id,
        message_id,
        external_id,

        -- verdict
        verdict,
        verdict = 'spam' as is_spam,
        source as feedback_source,
        note as feedback_note,
        actor as feedback_actor,

        -- timestamps
        received_at as feedback_received_at

    from source

)

select * from renamed
