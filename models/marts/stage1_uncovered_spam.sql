{#- Mining-window spam that no stage-1 candidate covers: the input of stage 2 (semantic
    clustering) beside the covered spam. -#}

with

mining as (

    select message_id
    from {{ ref('int_messages_windowed') }}
    where window_name = 'mining'

),

messages as (

    select * from {{ ref('int_messages_enriched') }}

),

candidates as (

    select signal_kind, signal_value from {{ ref('stage1_candidates') }}

),

covered as (

    select distinct s.message_id
    from {{ ref('int_message_signals_extracted') }} as s
    inner join candidates as c
        on c.signal_kind = s.signal_kind
        and c.signal_value = s.signal_value

)

select
    m.message_id,
    m.external_id,
    m.text,
    m.normalized_text,
    m.signature,
    m.sender_id,
    m.chat_id,
    m.event_at
from messages as m
inner join mining as w
    on w.message_id = m.message_id
where m.is_spam
    and not exists (select 1 from covered as c where c.message_id = m.message_id)
