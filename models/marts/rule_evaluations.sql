{#-
    Shadow evaluation, step 2: the metrics of every evaluated rule on every evaluated window
    (formulas in DESIGN.md; Python twin python_steps.metrics). Rules with no hit get a row too.
    unique_spam_hit_count: spam hits that no other evaluated rule hits on the same window.
    Labels are the effective ones (int_message_labels_overridden); reversed_hit_count: hits on
    messages a verdict or moderator outcome reversed to ham (the lifecycle's feedback deprecation).

    Planned for this one statement: the view int_messages_windowed hides the windows' sizes
    behind a CASE (1% of the messages expected, all of them read), so the planner would read it
    and then probe the messages and the hits once per message (nested loops); with nested loops
    off every join is a hash join; with sorts off (where an alternative exists) and work_mem, the
    per-message rule counts and the per-rule counts over every hit (2.4M at 1M messages with the
    mining window) are hash aggregates in memory, not a sort of every hit on rule_id (text,
    compared through the collation: 20 s at 1M). JIT off: the disabled plan types inflate the
    plan's cost past the JIT thresholds, and compiling it costs seconds (docs/benchmarks.md,
    2026-12-06).
-#}
{%- set windows = var('patas_shadow_windows', ['evaluation']) -%}

{{ config(pre_hook=[
    "set local enable_nestloop = off",
    "set local enable_sort = off",
    "set local work_mem = '256MB'",
    "set local jit = off",
]) }}

with

drafts as (

    select * from {{ ref('stg_patas__rule_drafts') }}

),

latest_rules as (

    select distinct on (rule_id)
        rule_id,
        rule_version,
        evaluation_kind,
        origin
    from drafts
    order by rule_id, rule_version desc

),

evaluated_windows as not materialized (

    select window_name
    from (
        values
        {%- for w in windows %}
        ('{{ w }}'){{ ',' if not loop.last }}
        {%- endfor %}
    ) as listed (window_name)
    where window_name in ('mining', 'evaluation')

),

messages as not materialized (

    -- Effective labels: a verdict or moderator reversal overrides the ingested label.
    select
        windowed.window_name,
        enriched.message_id,
        coalesce(overridden.is_spam, enriched.is_spam) as is_spam,
        coalesce(overridden.is_reversal, false) as is_reversal
    from {{ ref('int_messages_enriched') }} as enriched
    cross join lateral (
        select {{ window_name_of('enriched') }} as window_name
    ) as windowed
    inner join evaluated_windows
        on windowed.window_name = evaluated_windows.window_name
    left join {{ ref('int_message_labels_overridden') }} as overridden
        on enriched.message_id = overridden.message_id

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

rules_per_message as (

    select
        window_name,
        message_id,
        count(*) as rule_count
    from {{ ref('rule_hits') }}
    group by window_name, message_id

),

labelled_messages as (

    select
        messages.window_name,
        messages.message_id,
        messages.is_spam,
        messages.is_reversal,
        rules_per_message.rule_count
    from rules_per_message
    inner join messages
        on
            rules_per_message.message_id = messages.message_id
            and rules_per_message.window_name = messages.window_name

),

hit_counts as (

    select
        hits.rule_id,
        hits.window_name,
        count(*) as hit_count,
        count(*) filter (where labelled_messages.is_spam) as spam_hit_count,
        count(*) filter (where not labelled_messages.is_spam) as ham_hit_count,
        count(*) filter (where labelled_messages.is_spam is null) as unlabelled_hit_count,
        count(*) filter (where labelled_messages.is_reversal) as reversed_hit_count,
        count(*) filter (
            where labelled_messages.is_spam and labelled_messages.rule_count = 1
        ) as unique_spam_hit_count
    from {{ ref('rule_hits') }} as hits
    inner join labelled_messages
        on
            hits.message_id = labelled_messages.message_id
            and hits.window_name = labelled_messages.window_name
    group by hits.rule_id, hits.window_name

),

counted as (

    select
        latest_rules.rule_id,
        latest_rules.rule_version,
        window_totals.window_name,
        latest_rules.evaluation_kind,
        latest_rules.origin,
        coalesce(hit_counts.hit_count, 0) as hit_count,
        coalesce(hit_counts.spam_hit_count, 0) as spam_hit_count,
        coalesce(hit_counts.ham_hit_count, 0) as ham_hit_count,
        coalesce(hit_counts.unlabelled_hit_count, 0) as unlabelled_hit_count,
        coalesce(hit_counts.reversed_hit_count, 0) as reversed_hit_count,
        coalesce(hit_counts.unique_spam_hit_count, 0) as unique_spam_hit_count,
        window_totals.window_message_count,
        window_totals.window_spam_count,
        window_totals.window_ham_count
    from latest_rules
    cross join window_totals
    left join hit_counts
        on
            latest_rules.rule_id = hit_counts.rule_id
            and window_totals.window_name = hit_counts.window_name

),

final as (

    select
        rule_id,
        rule_version,
        window_name,
        evaluation_kind,
        origin,
        hit_count,
        spam_hit_count,
        ham_hit_count,
        unlabelled_hit_count,
        reversed_hit_count,
        unique_spam_hit_count,
        window_message_count,
        window_spam_count,
        window_ham_count,
        {{ hit_metric_columns() }},
        '{{ var("patas_run_id") | replace("'", "''") }}'::text as evaluated_run_id
    from counted

)

select * from final
