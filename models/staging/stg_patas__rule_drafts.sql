with

source as (

    select * from {{ source('patas', 'rule_drafts') }}

),

renamed as (

    select
        -- ids
        rule_id,
        version as rule_version,
        pattern_id,
        drafted_run_id,

        -- the rule
        rule_json,
        rule_canonical,
        description,
        sql_expression,
        regex,

        -- classification
        origin,
        evaluation_kind,
        complexity,

        -- timestamps
        created_at

    from source

)

select * from renamed
