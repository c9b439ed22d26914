{{ config(materialized='view') }}

{#- Window assignment from the run's vars (docs/contracts.md "Windows"). Time mode: event time in
    [start, end) of the mining or the evaluation window (messages in neither are left out). Hash
    mode: split buckets below patas_evaluation_share are evaluation, the rest mining, so a template
    never straddles the split. A view: the assignment changes with every run's vars and costs a
    filter, not a copy. -#}

with

messages as (

    select
        message_id,
        event_at,
        split_bucket
    from {{ ref('int_messages_enriched') }}

),

windowed as (

    select
        message_id,
        {% if var('patas_split_mode') == 'time' %}
        case
            when event_at >= {{ window_timestamp('patas_mining_start') }}
                and event_at < {{ window_timestamp('patas_mining_end') }}
                then 'mining'
            when event_at >= {{ window_timestamp('patas_evaluation_start') }}
                and event_at < {{ window_timestamp('patas_evaluation_end') }}
                then 'evaluation'
        end as window_name
        {% else %}
        case
            when split_bucket < {{ var('patas_evaluation_share') | int }} then 'evaluation'
            else 'mining'
        end as window_name
        {% endif %}
    from messages

)

select * from windowed
where window_name is not null
