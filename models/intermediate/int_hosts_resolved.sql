{{
    config(
        indexes=[{'columns': ['host'], 'unique': True}],
    )
}}

{#- Registrable domain of every URL host seen (the same resolution int_message_signals_extracted
    uses for its domain signals), and whether that domain is a known link shortener. -#}

with

hosts as (

    select distinct signal_value as host
    from {{ ref('int_message_signals_extracted') }}
    where signal_kind = 'host'

),

resolved as (

    {{ resolve_registrable_domains('hosts') }}

),

shorteners as (

    select domain from {{ ref('link_shorteners') }}

)

select
    r.host,
    r.registrable_domain,
    r.public_suffix,
    (s.domain is not null) as is_link_shortener
from resolved as r
left join shorteners as s
    on s.domain = r.registrable_domain
