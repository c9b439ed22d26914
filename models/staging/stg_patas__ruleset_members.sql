with

source as (

    select * from {{ source('patas', 'ruleset_members') }}

),

renamed as (

    select
        ruleset_name,
        rule_id,
        run_id
    from source

)

select * from renamed
