{{
    config(
        indexes=[{'columns': ['host'], 'unique': True}],
    )
}}

{#- Registrable domain (eTLD+1) of every host seen, by the Public Suffix List algorithm
    (python_steps.normalize.registrable_domain is the twin): the longest matching rule wins, an
    exception rule beats all, '*' is the default rule. -#}

with

hosts as (

    select distinct u.host
    from {{ ref('stg_raw__messages') }} as m
    cross join lateral unnest(m.urls) as x (url)
    cross join lateral (select regexp_replace(x.url, {{ text_pattern('host') }}, '\1') as host) as u

),

public_suffixes as (

    select * from {{ ref('public_suffixes') }}

),

labelled as (

    select
        host,
        string_to_array(host, '.') as labels,
        cardinality(string_to_array(host, '.')) as label_count
    from hosts

),

suffixes as (

    select
        l.host,
        l.label_count,
        l.label_count - k + 1 as suffix_length,
        array_to_string(l.labels[k:l.label_count], '.') as suffix,
        array_to_string(l.labels[k + 1:l.label_count], '.') as parent_suffix
    from labelled as l
    cross join lateral generate_series(1, l.label_count) as k

),

rule_hits as (

    select s.host, s.label_count, p.rule_kind, s.suffix_length
    from suffixes as s
    inner join public_suffixes as p
        on p.suffix = s.suffix
        and p.rule_kind in ('normal', 'exception')

    union all

    select s.host, s.label_count, p.rule_kind, s.suffix_length
    from suffixes as s
    inner join public_suffixes as p
        on p.suffix = s.parent_suffix
        and p.rule_kind = 'wildcard'

    union all

    select host, label_count, 'default' as rule_kind, 1 as suffix_length
    from labelled

),

matched as (

    select
        host,
        label_count,
        max(case when rule_kind = 'exception' then suffix_length - 1 end) as exception_length,
        max(case when rule_kind <> 'exception' then suffix_length end) as rule_length
    from rule_hits
    group by host, label_count

),

resolved as (

    select
        host,
        label_count,
        coalesce(exception_length, rule_length) as public_suffix_length
    from matched

),

final as (

    select
        r.host,
        case
            when r.label_count > r.public_suffix_length
                then array_to_string(
                    (string_to_array(r.host, '.'))[r.label_count - r.public_suffix_length:r.label_count],
                    '.'
                )
        end as registrable_domain,
        array_to_string(
            (string_to_array(r.host, '.'))[r.label_count - r.public_suffix_length + 1:r.label_count],
            '.'
        ) as public_suffix
    from resolved as r

)

select
    f.host,
    f.registrable_domain,
    f.public_suffix,
    (s.domain is not null) as is_link_shortener
from final as f
left join {{ ref('link_shorteners') }} as s
    on s.domain = f.registrable_domain
