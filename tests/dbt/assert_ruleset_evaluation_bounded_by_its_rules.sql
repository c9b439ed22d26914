-- A ruleset hits at least as many messages as its biggest rule and at most the sum of its rules.
with

members as (

    select 'active' as ruleset_name, rule_id
    from {{ ref('stg_patas__rule_lifecycle') }}
    where status = 'active'

    union

    select ruleset_name, rule_id
    from {{ ref('stg_patas__ruleset_members') }}

),

member_hits as (

    select
        members.ruleset_name,
        evaluations.window_name,
        max(evaluations.hit_count) as largest_rule_hit_count,
        sum(evaluations.hit_count) as summed_hit_count
    from members
    inner join {{ ref('rule_evaluations') }} as evaluations
        on members.rule_id = evaluations.rule_id
    group by members.ruleset_name, evaluations.window_name

)

select
    rulesets.ruleset_name,
    rulesets.window_name,
    rulesets.hit_count,
    member_hits.largest_rule_hit_count,
    member_hits.summed_hit_count
from {{ ref('ruleset_evaluation') }} as rulesets
left join member_hits
    on
        rulesets.ruleset_name = member_hits.ruleset_name
        and rulesets.window_name = member_hits.window_name
where
    rulesets.hit_count < coalesce(member_hits.largest_rule_hit_count, 0)
    or rulesets.hit_count > coalesce(member_hits.summed_hit_count, 0)
