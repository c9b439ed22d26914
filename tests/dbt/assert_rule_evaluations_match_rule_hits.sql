-- rule_evaluations counts exactly the rows of rule_hits, rule by rule and window by window.
with

counted as (

    select
        rule_id,
        window_name,
        count(*) as hit_count
    from {{ ref('rule_hits') }}
    group by rule_id, window_name

)

select
    evaluations.rule_id,
    evaluations.window_name,
    evaluations.hit_count,
    counted.hit_count as rule_hits_count
from {{ ref('rule_evaluations') }} as evaluations
full outer join counted
    on
        evaluations.rule_id = counted.rule_id
        and evaluations.window_name = counted.window_name
where coalesce(evaluations.hit_count, -1) <> coalesce(counted.hit_count, 0)
