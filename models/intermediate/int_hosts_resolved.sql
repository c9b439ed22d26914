{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook="{{ rebuild_when_inputs_change(int_hosts_resolved_input_state()) }}",
        post_hook="{{ record_input_state(int_hosts_resolved_input_state()) }}",
        indexes=[{'columns': ['host'], 'unique': True}],
    )
}}

{#- Registrable domain of every URL host seen (the same resolution int_message_signals_extracted
    uses for its domain signals), and whether that domain is a known link shortener. Rebuilt
    whole, and only when its inputs changed (macro input_state: new signal batches, reloaded
    seeds): finding the distinct hosts reads every signal row. -#}

with

hosts as (

    select distinct signal_value as host
    from {{ ref('int_message_signals_extracted') }}
    where signal_kind = 'host'
        and {{ inputs_changed(int_hosts_resolved_input_state()) }}

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
