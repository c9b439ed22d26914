with

source as (

    select * from {{ source('patas', 'rule_metrics_history') }}

),

renamed as (

    select
        -- ids
        rule_id,
        rule_version,
        run_id,
        run_seq,
        window_name,

        -- state after the run
        status,
        tier,

        -- counts
        hit_count,
        spam_hit_count,
        ham_hit_count,
        unlabelled_hit_count,
        reversed_hit_count,
        unique_spam_hit_count,
        window_message_count,
        window_spam_count,
        window_ham_count,

        -- rates
        precision,
        recall,
        coverage,
        false_positive_rate,
        f1_score,
        precision_lower_bound,
        precision_upper_bound,
        false_positive_rate_upper_bound,

        -- timestamps
        recorded_at

    from source

)

select * from renamed
