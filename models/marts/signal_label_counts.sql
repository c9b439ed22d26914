{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook=[
            "{{ prefer_parallel_plans() }}",
            "set work_mem = '512MB'",
            "set local jit = off",
            "{{ rebuild_when_inputs_change(signal_label_counts_input_state()) }}",
        ],
        post_hook=[
            "{{ prefer_parallel_plans(reset=true) }}",
            "reset work_mem",
            "{{ record_input_state(signal_label_counts_input_state()) }}",
        ],
        indexes=[{'columns': ['signal_kind', 'signal_value'], 'unique': True}],
    )
}}

{#- STAGE 1: per signal over the mining window, how often it occurs in spam, ham and unlabelled
    messages, and how suspicious that makes it. log_odds is the add-one smoothed log of the
    signal's spam:ham odds over the window's base spam:ham odds (0 = no evidence either way);
    spam_share_lower_bound is the Wilson 95% lower bound of spam / (spam + ham).

    Rebuilt whole, and only when its inputs changed (macro input_state: new batches, an upstream
    full refresh, other window vars, this model's code): a re-run on unchanged data computes the
    state and nothing else. Rebuilt whole because the window is a run setting and distinct
    sender / chat counts do not add up over batches.

    Speed (1M messages, 6M signal rows, 4.1M of them in the mining window): each count is its
    own parallel hash join of the signal rows with the mining-window messages and parallel hash
    aggregate (a shared materialized join would run in one process). The
    distinct sender and chat counts count the distinct (signal, sender) and (signal, chat) pairs
    with hash aggregates (no sort; the raised work_mem lets the planner keep ~1M pairs in one
    hash table). Window membership is a predicate on the messages' own columns (macro
    window_predicate), not a join with the window view. -#}

with

mining_messages as not materialized (

    select
        message_id,
        {{ message_label('is_spam') }} as label,
        sender_id,
        chat_id,
        event_at
    from (
        select
            message_id,
            is_spam,
            sender_id,
            chat_id,
            event_at,
            {{ split_bucket('signature') }} as split_bucket
        from {{ ref('int_messages_normalized') }}
    ) as messages
    where {{ window_predicate('mining') }}
        and {{ inputs_changed(signal_label_counts_input_state()) }}

),

signals as not materialized (

    select message_id, signal_kind, signal_value
    from {{ ref('int_message_signals_extracted') }}

),

base_rates as (

    select
        count(*) filter (where label = 'spam') as window_spam_count,
        count(*) filter (where label = 'ham') as window_ham_count
    from mining_messages

),

label_counts as (

    select
        s.signal_kind,
        s.signal_value,
        count(*) filter (where m.label = 'spam') as spam_count,
        count(*) filter (where m.label = 'ham') as ham_count,
        count(*) filter (where m.label = 'unlabelled') as unlabelled_count,
        count(*) as message_count,
        min(m.event_at) as first_seen_at,
        max(m.event_at) as last_seen_at
    from signals as s
    inner join mining_messages as m
        on m.message_id = s.message_id
    group by s.signal_kind, s.signal_value

),

{%- for column, counted in [('sender_id', 'sender_count'), ('chat_id', 'chat_count')] %}

{{ counted }}s as (

    select signal_kind, signal_value, count(*) as {{ counted }}
    from (
        select s.signal_kind, s.signal_value, m.{{ column }}
        from signals as s
        inner join mining_messages as m
            on m.message_id = s.message_id
        where m.{{ column }} is not null
        group by s.signal_kind, s.signal_value, m.{{ column }}
    ) as pairs
    group by signal_kind, signal_value

),
{%- endfor %}

counted as (

    select
        c.signal_kind,
        c.signal_value,
        c.spam_count,
        c.ham_count,
        c.unlabelled_count,
        c.message_count,
        coalesce(sc.sender_count, 0) as sender_count,
        coalesce(cc.chat_count, 0) as chat_count,
        c.first_seen_at,
        c.last_seen_at
    from label_counts as c
    left join sender_counts as sc
        on sc.signal_kind = c.signal_kind
        and sc.signal_value = c.signal_value
    left join chat_counts as cc
        on cc.signal_kind = c.signal_kind
        and cc.signal_value = c.signal_value

),

scored as (

    select
        c.*,
        case
            when c.spam_count + c.ham_count > 0
                then c.spam_count::float8 / (c.spam_count + c.ham_count)
        end as spam_share,
        ln((c.spam_count + 1.0) / (c.ham_count + 1.0))
            - ln((b.window_spam_count + 1.0) / (b.window_ham_count + 1.0)) as log_odds,
        {{ wilson_lower_bound('c.spam_count', 'c.spam_count + c.ham_count') }} as spam_share_lower_bound
    from counted as c
    cross join base_rates as b

)

select
    signal_kind,
    signal_value,
    spam_count,
    ham_count,
    unlabelled_count,
    message_count,
    sender_count,
    chat_count,
    first_seen_at,
    last_seen_at,
    spam_share,
    log_odds,
    spam_share_lower_bound
from scored
