{#- The stage-1 signals worth rule drafting and stage 2. Eligible: seen in at least
    patas_min_spam_count mining-window spam messages and more spam-leaning than the window's base
    rate (log_odds > 0). Ranked by suspiciousness: Wilson lower bound of the spam share, then
    smoothed log-odds, then spam count, then kind and value (a total order: deterministic).
    Kept: the top patas_suspiciousness_threshold fraction of eligible signals ('top_fraction'),
    plus eligible signals never seen in ham with at least twice the minimum spam count
    ('spam_only'). -#}

with

counts as (

    select * from {{ ref('signal_label_counts') }}

),

eligible as (

    select *
    from counts
    where spam_count >= {{ var('patas_min_spam_count') | int }}
        and log_odds > 0

),

ranked as (

    select
        *,
        row_number() over (
            order by
                spam_share_lower_bound desc,
                log_odds desc,
                spam_count desc,
                signal_kind collate "C",
                signal_value collate "C"
        ) as suspiciousness_rank,
        count(*) over () as eligible_signal_count
    from eligible

),

kept as (

    select
        *,
        case
            when suspiciousness_rank <= ceil({{ suspiciousness_threshold() }} * eligible_signal_count)
                then 'top_fraction'
            when ham_count = 0 and spam_count >= 2 * {{ var('patas_min_spam_count') | int }}
                then 'spam_only'
        end as kept_reason
    from ranked

)

select
    signal_kind,
    signal_value,
    suspiciousness_rank,
    kept_reason,
    spam_count,
    ham_count,
    unlabelled_count,
    sender_count,
    chat_count,
    spam_share,
    log_odds,
    spam_share_lower_bound,
    {{ suspiciousness_threshold() }}::float8 as suspiciousness_threshold,
    eligible_signal_count,
    first_seen_at,
    last_seen_at
from kept
where kept_reason is not null
