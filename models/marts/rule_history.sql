{#-
    Each rule's metrics over runs: a view over patas.rule_metrics_history, the snapshot the
    lifecycle step (python_steps.lifecycle) appends after every shadow evaluation.
-#}
{{ config(materialized='view') }}

with

history as (

    select * from {{ ref('stg_patas__rule_metrics_history') }}

),

final as (

    select
        rule_id,
        rule_version,
        run_id,
        run_seq,
        window_name,
        status,
        tier,
        hit_count,
        spam_hit_count,
        ham_hit_count,
        unlabelled_hit_count,
        reversed_hit_count,
        unique_spam_hit_count,
        window_message_count,
        window_spam_count,
        window_ham_count,
        precision,
        recall,
        coverage,
        false_positive_rate,
        f1_score,
        precision_lower_bound,
        false_positive_rate_upper_bound,
        precision - lag(precision) over (
            partition by rule_id, window_name
            order by run_seq
        ) as precision_change
    from history

)

select * from final
