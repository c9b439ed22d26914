{#- Values test of window_predicate under this run's vars: messages at the edges of the windows
    get the window int_messages_windowed would give them (hash mode: split buckets around
    patas_evaluation_share; time mode: timestamps around the window bounds). Returns the failing
    cases. -#}

with

{% if var('patas_split_mode') == 'time' %}

cases as (

    select * from (
        values
        (1, null::int, {{ window_timestamp('patas_mining_start') }}, 'mining'),
        (2, null::int, {{ window_timestamp('patas_mining_end') }} - interval '1 microsecond', 'mining'),
        (3, null::int, {{ window_timestamp('patas_evaluation_end') }}, null),
        (4, null::int, null::timestamptz, null)
    ) as t (case_no, split_bucket, event_at, expected)

),

{% else %}

cases as (

    select * from (
        values
        (1, 0, null::timestamptz, 'evaluation'),
        (2, {{ var('patas_evaluation_share') | int }} - 1, null::timestamptz, 'evaluation'),
        (3, {{ var('patas_evaluation_share') | int }}, null::timestamptz, 'mining'),
        (4, 99, null::timestamptz, 'mining')
    ) as t (case_no, split_bucket, event_at, expected)
    where t.split_bucket between 0 and 99

),

{% endif %}

assigned as (

    select
        c.*,
        case
            when {{ window_predicate('mining', 'c') }} then 'mining'
            when {{ window_predicate('evaluation', 'c') }} then 'evaluation'
        end as actual
    from cases as c

)

select *
from assigned
where actual is distinct from expected
