with

source as (

    select * from {{ source('patas', 'rule_signal_clauses') }}

),

renamed as (

    select
        rule_id,
        clause_no,
        signal_kind,
        signal_value
    from source

)

select * from renamed
