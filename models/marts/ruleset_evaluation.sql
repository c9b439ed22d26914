{#-
    Shadow evaluation of whole rulesets: the union of the rules that are active now
    (patas.rule_lifecycle, ruleset 'active') and, for every safety profile, the set that profile
    would make active (patas.ruleset_members, written by python_steps.lifecycle). A message counts
    once however many rules of the set hit it. Empty sets get a row of zeros.
    Planned like rule_evaluations (hash joins and aggregates in memory, JIT off); a set's hits are
    read through rule_hits' index on the rule (docs/benchmarks.md).
-#}
{%- set windows = var('patas_shadow_windows', ['evaluation']) -%}

{{ config(pre_hook=[
    "set local enable_nestloop = off",
    "set local enable_sort = off",
    "set local work_mem = '256MB'",
    "set local jit = off",
]) }}

with

lifecycle as (

    select * from {{ ref('stg_patas__rule_lifecycle') }}

),

profile_members as (

    select * from {{ ref('stg_patas__ruleset_members') }}

),

members as (

    select
        'active' as ruleset_name,
        rule_id
    from lifecycle
    where status = 'active'

    union

    select
        ruleset_name,
        rule_id
    from profile_members

),

rulesets as (

    select 'active' as ruleset_name
    union
    select ruleset_name from profile_members

),

evaluated_windows as (

    select window_name
    from (
        values
        {%- for w in windows %}
        ('{{ w }}'){{ ',' if not loop.last }}
        {%- endfor %}
    ) as listed (window_name)
    where window_name in ('mining', 'evaluation')

),

messages as (

    -- Effective labels: a verdict or moderator reversal overrides the ingested label.
    select
        windowed.window_name,
        windowed.message_id,
        coalesce(overridden.is_spam, windowed.is_spam) as is_spam,
        coalesce(overridden.is_reversal, false) as is_reversal
    from {{ ref('int_messages_windowed') }} as windowed
    inner join evaluated_windows
        on windowed.window_name = evaluated_windows.window_name
    left join {{ ref('int_message_labels_overridden') }} as overridden
        on windowed.message_id = overridden.message_id

),

window_totals as (

    select
        evaluated_windows.window_name,
        count(messages.message_id) as window_message_count,
        count(messages.message_id) filter (where messages.is_spam) as window_spam_count,
        count(messages.message_id) filter (where not messages.is_spam) as window_ham_count
    from evaluated_windows
    left join messages
        on evaluated_windows.window_name = messages.window_name
    group by evaluated_windows.window_name

),

member_sets as (

    select
        ruleset_name,
        array_agg(rule_id order by rule_id) as rule_ids
    from members
    group by ruleset_name

),

-- Rulesets of the same rules have the same hits: each distinct set is measured once.
distinct_sets as (

    select
        rule_ids,
        row_number() over () as set_key
    from (select distinct rule_ids from member_sets) as sets

),

set_hits as (

    select distinct
        distinct_sets.set_key,
        hits.window_name,
        hits.message_id
    from distinct_sets
    inner join {{ ref('rule_hits') }} as hits
        on hits.rule_id = any(distinct_sets.rule_ids)

),

set_hit_counts as (

    select
        set_hits.set_key,
        set_hits.window_name,
        count(*) as hit_count,
        count(*) filter (where messages.is_spam) as spam_hit_count,
        count(*) filter (where not messages.is_spam) as ham_hit_count,
        count(*) filter (where messages.is_spam is null) as unlabelled_hit_count
    from set_hits
    inner join messages
        on
            set_hits.window_name = messages.window_name
            and set_hits.message_id = messages.message_id
    group by set_hits.set_key, set_hits.window_name

),

hit_counts as (

    select
        member_sets.ruleset_name,
        set_hit_counts.window_name,
        set_hit_counts.hit_count,
        set_hit_counts.spam_hit_count,
        set_hit_counts.ham_hit_count,
        set_hit_counts.unlabelled_hit_count
    from member_sets
    inner join distinct_sets
        on member_sets.rule_ids = distinct_sets.rule_ids
    inner join set_hit_counts
        on distinct_sets.set_key = set_hit_counts.set_key

),

rule_counts as (

    select
        ruleset_name,
        count(distinct rule_id) as rule_count
    from members
    group by ruleset_name

),

counted as (

    select
        rulesets.ruleset_name,
        window_totals.window_name,
        coalesce(rule_counts.rule_count, 0) as rule_count,
        coalesce(hit_counts.hit_count, 0) as hit_count,
        coalesce(hit_counts.spam_hit_count, 0) as spam_hit_count,
        coalesce(hit_counts.ham_hit_count, 0) as ham_hit_count,
        coalesce(hit_counts.unlabelled_hit_count, 0) as unlabelled_hit_count,
        window_totals.window_message_count,
        window_totals.window_spam_count,
        window_totals.window_ham_count
    from rulesets
    cross join window_totals
    left join rule_counts
        on rulesets.ruleset_name = rule_counts.ruleset_name
    left join hit_counts
        on
            rulesets.ruleset_name = hit_counts.ruleset_name
            and window_totals.window_name = hit_counts.window_name

),

final as (

    select
        ruleset_name,
        window_name,
        rule_count,
        hit_count,
        spam_hit_count,
        ham_hit_count,
        unlabelled_hit_count,
        window_message_count,
        window_spam_count,
        window_ham_count,
        {{ hit_metric_columns() }},
        '{{ var("patas_run_id") | replace("'", "''") }}'::text as evaluated_run_id
    from counted

)

select * from final
