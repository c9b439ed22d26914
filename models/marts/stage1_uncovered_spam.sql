{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook=[
            "{{ prefer_parallel_plans() }}",
            "set local jit = off",
            "{{ rebuild_when_inputs_change(stage1_uncovered_spam_input_state()) }}",
        ],
        post_hook=[
            "{{ prefer_parallel_plans(reset=true) }}",
            "{{ record_input_state(stage1_uncovered_spam_input_state()) }}",
        ],
    )
}}

{#- Mining-window spam that no stage-1 candidate covers: the input of stage 2 (semantic
    clustering) beside the covered spam. Rebuilt whole, and only when its inputs changed (macro
    input_state: new batches, an upstream full refresh, other window vars or another candidate
    set). -#}

with

messages as (

    select
        message_id,
        external_id,
        text,
        normalized_text,
        signature,
        sender_id,
        chat_id,
        event_at
    from {{ ref('int_messages_enriched') }}
    where is_spam
        and {{ window_predicate('mining') }}
        and {{ inputs_changed(stage1_uncovered_spam_input_state()) }}

),

candidates as (

    select signal_kind, signal_value from {{ ref('stage1_candidates') }}

),

covered as (

    select s.message_id
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
where not exists (select 1 from covered as c where c.message_id = m.message_id)
