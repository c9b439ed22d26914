{{ config(materialized='table', indexes=[{'columns': ['message_id'], 'unique': True}]) }}

{#- Effective labels (docs/contracts.md "Label feedback"): the messages whose label a later verdict
    or a moderator outcome overrides. The latest verdict in patas.label_feedback wins; without one,
    a message the platform unbanned (moderators reversed its block) counts as ham unless it was
    already labelled ham. Every other message keeps the label it was ingested with, so the
    evaluation models read coalesce(override, original) and this table stays as small as the
    feedback. A table, rebuilt each run: feedback arrives between runs, outside the ingest batches
    the incremental models follow. -#}

with

messages as (

    select
        message_id,
        external_id,
        is_spam,
        unbanned
    from {{ ref('stg_raw__messages') }}

),

latest_feedback as (

    select distinct on (message_id)
        message_id,
        feedback_id,
        is_spam,
        feedback_source,
        feedback_received_at
    from {{ ref('stg_patas__label_feedback') }}
    order by message_id, feedback_id desc

),

overrides as (

    -- A message the platform unbanned counts as ham unless already labelled ham.
    select
        messages.message_id,
        messages.external_id,
        messages.is_spam as original_is_spam,
        coalesce(
            latest_feedback.is_spam,
            case when messages.unbanned and messages.is_spam is distinct from false then false end
        ) as is_spam,
        case
            when latest_feedback.feedback_id is not null then 'feedback'
            else 'moderator_unbanned'
        end as override_kind,
        latest_feedback.feedback_id,
        latest_feedback.feedback_source,
        latest_feedback.feedback_received_at
    from messages
    left join latest_feedback
        on messages.message_id = latest_feedback.message_id
    where
        latest_feedback.message_id is not null
        or (messages.unbanned and messages.is_spam is distinct from false)

),

final as (

    select
        message_id,
        external_id,
        original_is_spam,
        is_spam,
        override_kind,
        feedback_id,
        feedback_source,
        feedback_received_at,
        original_is_spam is distinct from is_spam as is_changed,
        not is_spam and original_is_spam is distinct from false as is_reversal
    from overrides

)

select * from final
