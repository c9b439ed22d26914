{#-
    Shadow evaluation, step 1: which messages each rule hits, on the evaluated windows.

    Two set-based paths, one per evaluation kind (python_steps.rules decides the kind):
    - signal rules: patas.rule_signal_clauses (the rule in disjunctive normal form over extracted
      signals) joined to int_message_signals_extracted; a message hits a rule when it carries every
      signal of one of its clauses (group by rule, clause, message having count = clause size);
    - predicate rules: one scan of int_messages_enriched per batch of predicates
      (macro rule_predicate_hits), the predicates read from patas.rule_drafts (via stg_patas__rule_drafts) at compile time.

    Every rule in patas.rule_drafts (its latest version) is evaluated, whatever its status, so
    this model does not depend on the lifecycle that reads it.

    parallel_tuple_cost is lowered for this one statement: the planner cannot see that
    "unnest(array[case ...]) where rule_id is not null" keeps few rows, so it expects tens of
    millions of rows through Gather and picks a serial plan; with parallel workers the predicate
    scans run about twice as fast on 2 cores (docs/benchmarks.md).
-#}
{%- set windows = var('patas_shadow_windows', ['evaluation']) -%}
{%- for w in windows -%}
    {%- if w not in ('mining', 'evaluation') -%}
        {{ exceptions.raise_compiler_error("patas_shadow_windows may hold 'mining' and 'evaluation' only, not " ~ (w | tojson)) }}
    {%- endif -%}
{%- endfor -%}
{%- set predicate_rules = evaluated_predicate_rules(ref('stg_patas__rule_drafts')) -%}

{{ config(
    pre_hook=[
        "set local statement_timeout = '" ~ (var('patas_shadow_timeout_seconds', 900) | int) ~ "s'",
        "set local parallel_tuple_cost = 0.001",
    ],
    post_hook="analyze {{ this }}",
    indexes=[{'columns': ['rule_id', 'window_name']}, {'columns': ['message_id']}],
) }}

with

drafts as (

    select * from {{ ref('stg_patas__rule_drafts') }}

),

latest_rules as (

    select distinct on (rule_id)
        rule_id,
        evaluation_kind
    from drafts
    order by rule_id, rule_version desc

),

windowed as (

    select * from {{ ref('int_messages_windowed') }}
    where window_name in ({% for w in windows %}'{{ w }}'{{ ', ' if not loop.last }}{% endfor %})

),

signal_clauses as (

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

clause_signals as (

    -- Every CTE here is referenced once, so Postgres inlines it and keeps the plan parallel
    -- (a CTE referenced twice is materialized, and a CTE scan forces a serial plan).
    select
        rule_id,
        clause_no,
        signal_kind,
        signal_value,
        count(*) over (partition by rule_id, clause_no) as signal_count
    from signal_clauses

),

signal_hits as (

    select distinct
        clause_signals.rule_id,
        signals.message_id,
        windowed.window_name
    from clause_signals
    inner join {{ ref('int_message_signals_extracted') }} as signals
        on
            clause_signals.signal_kind = signals.signal_kind
            and clause_signals.signal_value = signals.signal_value
    inner join windowed
        on signals.message_id = windowed.message_id
    group by
        clause_signals.rule_id,
        clause_signals.clause_no,
        clause_signals.signal_count,
        signals.message_id,
        windowed.window_name
    having count(*) = clause_signals.signal_count

),

predicate_hits as (

    {{ rule_predicate_hits(
        predicate_rules,
        ref('int_messages_enriched'),
        ref('int_messages_windowed'),
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
