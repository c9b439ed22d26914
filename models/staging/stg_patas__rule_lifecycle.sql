with

source as (

    select * from {{ source('patas', 'rule_lifecycle') }}

),

renamed as (

    select
        -- ids
        rule_id,
        version as rule_version,
        promoted_run_id,
        updated_run_id,

        -- state
        status,
        status_reason,
        tier,
        is_pinned,
        promoted_metrics,

        -- timestamps
        promoted_at,
        updated_at

    from source

)

select * from renamed
