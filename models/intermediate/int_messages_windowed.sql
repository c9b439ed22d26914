{{ config(materialized='view') }}

{#- Window assignment from the run's vars (docs/contracts.md "Windows"). Time mode: event time in
    [start, end) of the mining or the evaluation window (messages in neither are left out). Hash
    mode: split buckets below patas_evaluation_share are evaluation, the rest mining, so a template
    never straddles the split (both from macro window_predicate, which models filtering the
    messages directly use too). A view: the assignment changes with every run's vars and costs a
    filter, not a copy. It carries the message columns one window's readers need (labels, time,
    bucket, text, entities), so they read this view alone: a join back to the messages reads them
    twice, planned blind through the CASE (docs/benchmarks.md, session 16). -#}

with

messages as (

    select
        message_id,
        external_id,
        event_at,
        split_bucket,
        is_spam,
        normalized_text,
        urls,
        phones,
        short_codes,
        handles,
        emails
    from {{ ref('int_messages_enriched') }}

),

windowed as (

    select
        messages.*,
        {{ window_name_of('messages') }} as window_name
    from messages

)

select * from windowed
where window_name is not null
