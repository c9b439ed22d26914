{{
    config(
        pre_hook="{{ prefer_parallel_plans() }}",
        post_hook="{{ prefer_parallel_plans(reset=true) }}",
        indexes=[{'columns': ['signal_kind', 'signal_value'], 'unique': True}],
    )
}}

{#- STAGE 1: per signal over the mining window, how often it occurs in spam, ham and unlabelled
    messages, and how suspicious that makes it. log_odds is the add-one smoothed log of the
    signal's spam:ham odds over the window's base spam:ham odds (0 = no evidence either way);
    spam_share_lower_bound is the Wilson 95% lower bound of spam / (spam + ham). -#}

with

signals as (

    select * from {{ ref('int_message_signals_extracted') }}

),

windowed as (

    select * from {{ ref('int_messages_windowed') }}
    where window_name = 'mining'

),

messages as (

    select
        message_id,
        label,
        sender_id,
        chat_id,
        event_at
    from {{ ref('int_messages_enriched') }}

),

mining_messages as (

    select m.*
    from messages as m
    inner join windowed as w
        on w.message_id = m.message_id

),

base_rates as (

    select
        count(*) filter (where label = 'spam') as window_spam_count,
        count(*) filter (where label = 'ham') as window_ham_count
    from mining_messages

),

joined as materialized (

    select
        s.signal_kind,
        s.signal_value,
        m.label,
        m.sender_id,
        m.chat_id,
        m.event_at
    from signals as s
    inner join mining_messages as m
        on m.message_id = s.message_id

),

{#- count(distinct) per signal sorts every signal row by (kind, value, sender) and again per
    group for chats; counting the distinct (signal, sender) and (signal, chat) pairs with hash
    aggregates instead gives the same numbers (nulls are not counted either way) without a sort. -#}

label_counts as (

    select
        signal_kind,
        signal_value,
        count(*) filter (where label = 'spam') as spam_count,
        count(*) filter (where label = 'ham') as ham_count,
        count(*) filter (where label = 'unlabelled') as unlabelled_count,
        count(*) as message_count,
        min(event_at) as first_seen_at,
        max(event_at) as last_seen_at
    from joined
    group by signal_kind, signal_value

),

sender_counts as (

    select signal_kind, signal_value, count(*) as sender_count
    from (
        select distinct signal_kind, signal_value, sender_id
        from joined
        where sender_id is not null
    ) as d
    group by signal_kind, signal_value

),

chat_counts as (

    select signal_kind, signal_value, count(*) as chat_count
    from (
        select distinct signal_kind, signal_value, chat_id
        from joined
        where chat_id is not null
    ) as d
    group by signal_kind, signal_value

),

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
