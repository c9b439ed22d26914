{#-
    Shadow evaluation, step 1: which messages each rule hits, on the evaluated windows.

    Two set-based paths, one per evaluation kind (python_steps.rules decides the kind):
    - signal rules: patas.rule_signal_clauses (the rule in disjunctive normal form over extracted
      signals) joined to int_message_signals_extracted; a message hits a rule when it carries every
      signal of one of its clauses. A rule of a single signal (most rules) hits exactly the messages
      carrying it, once each (the signal key is unique), so only the other rules are aggregated
      (group by clause and message having count = clause size, then by rule and message);
    - predicate rules: one scan of int_messages_enriched per batch of predicates
      (macro rule_predicate_hits), the predicates read from patas.rule_drafts (via stg_patas__rule_drafts) at compile time.

    Every rule in patas.rule_drafts (its latest version) is evaluated, whatever its status, so
    this model does not depend on the lifecycle that reads it.

    The planner sees both sides blind: the rules side is a distinct on over a staging view (a few
    rows expected, about a thousand clauses and millions of matches read) and the view
    int_messages_windowed hides the windows' sizes behind a CASE (1% of the messages expected, all
    of them read). So the plan is pinned for this one statement: the joins in the order written
    (join_collapse_limit: the signals joined to the messages' windows, hashed, then to the
    clauses), no nested loops (with a few rows expected the planner probes a million rows once per
    match, or the messages once per hit), and work_mem for the hash tables and the clause
    aggregate (about 300 MB at 1M messages) instead of sorts on disk. JIT is off: disabling nested
    loops adds a huge cost to the plan (the predicate scans' lateral unnest can only be a nested
    loop), which would make Postgres compile and optimize it with JIT, about 10 s for nothing.
    Aggregates group by integer keys (clause_key, rule_key): a sort on rule_id compares text
    through the collation, the slowest part of the former plan (docs/benchmarks.md, 2026-12-06).
    parallel_tuple_cost is lowered:
    the planner cannot see that "unnest(array[case ...]) where rule_id is not null" keeps few
    rows, so it expects tens of millions of rows through Gather and picks a serial plan; with
    parallel workers the predicate scans run about twice as fast on 2 cores.
-#}
{%- set windows = var('patas_shadow_windows', ['evaluation']) -%}
{%- for w in windows -%}
    {%- if w not in ('mining', 'evaluation') -%}
        {{ exceptions.raise_compiler_error("patas_shadow_windows may hold 'mining' and 'evaluation' only, not " ~ (w | tojson)) }}
    {%- endif -%}
{%- endfor -%}
{%- set predicate_rules = evaluated_predicate_rules(ref('stg_patas__rule_drafts')) -%}

{{ config(
    unlogged=True,
    pre_hook=[
        "{{ assert_stage1_built(ref('int_messages_enriched'), ref('int_message_signals_extracted')) }}",
        "set local statement_timeout = '" ~ (var('patas_shadow_timeout_seconds', 900) | int) ~ "s'",
        "set local parallel_tuple_cost = 0.001",
        "set local join_collapse_limit = 1",
        "set local enable_nestloop = off",
        "set local work_mem = '256MB'",
        "set local jit = off",
    ],
    indexes=[{'columns': ['rule_id', 'window_name', 'message_id'], 'unique': True}, {'columns': ['message_id']}],
) }}

with

drafts as (

    select * from {{ ref('stg_patas__rule_drafts') }}

),

latest_rules as not materialized (

    select distinct on (rule_id)
        rule_id,
        evaluation_kind
    from drafts
    order by rule_id, rule_version desc

),

windowed as not materialized (

    select * from {{ ref('int_messages_windowed') }}
    where window_name in ({% for w in windows %}'{{ w }}'{{ ', ' if not loop.last }}{% endfor %})

),

signal_clauses as not materialized (

    select distinct
        clauses.rule_id,
        clauses.clause_no,
        clauses.signal_kind,
        clauses.signal_value
    from {{ ref('stg_patas__rule_signal_clauses') }} as clauses
    inner join latest_rules
        on clauses.rule_id = latest_rules.rule_id
    where latest_rules.evaluation_kind = 'signal'

),

rule_sizes as not materialized (

    select
        rule_id,
        count(*) as rule_signal_count
    from signal_clauses
    group by rule_id

),

clause_sizes as not materialized (

    select
        rule_id,
        clause_no,
        count(*) as signal_count
    from signal_clauses
    group by rule_id, clause_no

),

single_signal_rules as not materialized (

    select
        signal_clauses.rule_id,
        signal_clauses.signal_kind,
        signal_clauses.signal_value
    from signal_clauses
    inner join rule_sizes
        on signal_clauses.rule_id = rule_sizes.rule_id
    where rule_sizes.rule_signal_count = 1

),

multi_signal_clauses as not materialized (

    select
        signal_clauses.rule_id,
        signal_clauses.clause_no,
        signal_clauses.signal_kind,
        signal_clauses.signal_value,
        clause_sizes.signal_count
    from signal_clauses
    inner join rule_sizes
        on signal_clauses.rule_id = rule_sizes.rule_id
    inner join clause_sizes
        on
            signal_clauses.rule_id = clause_sizes.rule_id
            and signal_clauses.clause_no = clause_sizes.clause_no
    where rule_sizes.rule_signal_count > 1

),

single_signal_hits as (

    -- A rule of one signal hits exactly the messages carrying it, once each (the signal key is unique).
    select
        single_signal_rules.rule_id,
        signals.message_id,
        windowed.window_name
    from {{ ref('int_message_signals_extracted') }} as signals
    inner join windowed
        on signals.message_id = windowed.message_id
    inner join single_signal_rules
        on
            signals.signal_kind = single_signal_rules.signal_kind
            and signals.signal_value = single_signal_rules.signal_value

),

clause_hits as (

    -- Rules of several signals: a clause hits a message carrying all of its signals.
    select
        multi_signal_clauses.rule_id,
        signals.message_id,
        windowed.window_name
    from {{ ref('int_message_signals_extracted') }} as signals
    inner join multi_signal_clauses
        on
            signals.signal_kind = multi_signal_clauses.signal_kind
            and signals.signal_value = multi_signal_clauses.signal_value
    inner join windowed
        on signals.message_id = windowed.message_id
    -- integer keys first: a sort on them compares the text keys only within a group
    group by
        signals.message_id,
        multi_signal_clauses.clause_no,
        hashtext(multi_signal_clauses.rule_id),
        multi_signal_clauses.rule_id,
        multi_signal_clauses.signal_count,
        windowed.window_name
    having count(*) = multi_signal_clauses.signal_count

),

signal_hits as (

    select rule_id, message_id, window_name from single_signal_hits

    union all

    -- a message hit by several clauses of one rule counts once
    select
        rule_id,
        message_id,
        window_name
    from clause_hits
    group by message_id, rule_id, window_name

),

predicate_hits as (

    {{ rule_predicate_hits(
        predicate_rules,
        ref('int_messages_enriched'),
        windows,
        var('patas_predicates_per_scan', 250),
        var('patas_regexes_per_scan', 30),
    ) }}

),

final as (

    select rule_id, message_id, window_name from signal_hits
    union all
    select rule_id, message_id, window_name from predicate_hits

)

select * from final
