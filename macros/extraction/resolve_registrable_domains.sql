{#- Registrable domain (eTLD+1) and public suffix of hosts, by the Public Suffix List algorithm
    over the public_suffixes seed (twin: python_steps.text.normalize.registrable_domain): the rule with
    the most labels wins, an exception rule beats all, '*' is the default rule; a host that is
    itself a public suffix has no registrable domain (null).
    Emits a SELECT of (host, registrable_domain, public_suffix), one row per distinct host.
    Arguments: hosts_relation - a relation or subquery with a text column host. -#}
{% macro resolve_registrable_domains(hosts_relation) -%}
select
    r.host,
    case
        when r.label_count > r.public_suffix_length
            then array_to_string(r.labels[r.label_count - r.public_suffix_length:r.label_count], '.')
    end as registrable_domain,
    array_to_string(r.labels[r.label_count - r.public_suffix_length + 1:r.label_count], '.') as public_suffix
from (
    select
        s.host,
        s.labels,
        s.label_count,
        coalesce(
            max(case when p.rule_kind = 'exception' then s.suffix_length - 1 end),
            greatest(
                max(case when p.rule_kind = 'normal' then s.suffix_length end),
                max(case when w.rule_kind = 'wildcard' then s.suffix_length end)
            ),
            1
        ) as public_suffix_length
    from (
        select
            l.host,
            l.labels,
            l.label_count,
            l.label_count - k + 1 as suffix_length,
            array_to_string(l.labels[k:l.label_count], '.') as suffix,
            array_to_string(l.labels[k + 1:l.label_count], '.') as parent_suffix
        from (
            select
                hr.host,
                string_to_array(hr.host, '.') as labels,
                cardinality(string_to_array(hr.host, '.')) as label_count
            from (select distinct host from {{ hosts_relation }}) as hr
        ) as l
        cross join lateral generate_series(1, l.label_count) as k
    ) as s
    left join {{ ref('public_suffixes') }} as p
        on p.suffix = s.suffix
        and p.rule_kind in ('normal', 'exception')
    left join {{ ref('public_suffixes') }} as w
        on w.suffix = s.parent_suffix
        and w.rule_kind = 'wildcard'
    group by s.host, s.labels, s.label_count
) as r
{%- endmacro %}
