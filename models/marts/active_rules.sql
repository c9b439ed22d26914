{#-
    The table warehouse consumers read: the active rules, readable and runnable, with the metrics
    that promoted them and those of the latest evaluation. The read-only role (var
    patas_reader_role, default patas_reader) is created if needed and granted SELECT here only.
    A manual promote / deprecate / pin refreshes the table in its own transaction through
    marts.refresh_active_rules() (macro create_refresh_function), so consumers see it at once.
-#}
{%- set reader_role = var('patas_reader_role', 'patas_reader') -%}

{{ config(
    pre_hook="{{ create_reader_role(var('patas_reader_role', 'patas_reader'), this.schema) }}",
    post_hook="{{ create_refresh_function(this) }}",
    grants={'select': [reader_role]},
) }}

with

lifecycle as (

    select * from {{ ref('stg_patas__rule_lifecycle') }}

),

drafts as (

    select * from {{ ref('stg_patas__rule_drafts') }}

),

evaluations as (

    select * from {{ ref('rule_evaluations') }}
    where window_name = 'evaluation'

),

active as (

    select * from lifecycle
    where status = 'active'

),

final as (

    select
        active.rule_id,
        active.rule_version,
        drafts.description,
        drafts.rule_json,
        drafts.sql_expression,
        drafts.regex,
        active.tier,
        drafts.origin,
        drafts.pattern_id,
        drafts.evaluation_kind,
        active.is_pinned,
        active.promoted_at,
        active.promoted_run_id,
        active.promoted_metrics,
        (active.promoted_metrics ->> 'precision')::double precision as promoted_precision,
        (active.promoted_metrics ->> 'hit_count')::bigint as promoted_hit_count,
        evaluations.evaluated_run_id,
        evaluations.hit_count,
        evaluations.spam_hit_count,
        evaluations.ham_hit_count,
        evaluations.unlabelled_hit_count,
        evaluations.unique_spam_hit_count,
        evaluations.precision,
        evaluations.recall,
        evaluations.coverage,
        evaluations.false_positive_rate,
        evaluations.f1_score,
        evaluations.precision_lower_bound,
        evaluations.false_positive_rate_upper_bound
    from active
    inner join drafts
        on
            active.rule_id = drafts.rule_id
            and active.rule_version = drafts.rule_version
    left join evaluations
        on active.rule_id = evaluations.rule_id

)

select * from final
