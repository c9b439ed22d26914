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
-#}
{%- set windows = var('patas_shadow_windows', ['evaluation']) -%}
{%- for w in windows -%}
    {%- if w not in ('mining', 'evaluation') -%}
        {{ exceptions.raise_compiler_error("patas_shadow_windows may hold 'mining' and 'evaluation' only, not " ~ (w | tojson)) }}
    {%- endif -%}
{%- endfor -%}
{%- set predicate_rules = evaluated_predicate_rules(ref('stg_patas__rule_drafts')) -%}

{{ config(
    pre_hook="set local statement_timeout = '" ~ (var('patas_shadow_timeout_seconds', 900) | int) ~ "s'",
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

clause_sizes as (

    select
        rule_id,
        clause_no,
        count(*) as signal_count
    from signal_clauses
    group by rule_id, clause_no

),

clause_signal_matches as (

    select
        signal_clauses.rule_id,
        signal_clauses.clause_no,
        signals.message_id,
        windowed.window_name,
        count(*) as matched_signal_count
    from signal_clauses
    inner join {{ ref('int_message_signals_extracted') }} as signals
        on
            signal_clauses.signal_kind = signals.signal_kind
            and signal_clauses.signal_value = signals.signal_value
    inner join windowed
        on signals.message_id = windowed.message_id
    group by
        signal_clauses.rule_id,
        signal_clauses.clause_no,
        signals.message_id,
        windowed.window_name

),

signal_hits as (

    select distinct
        matches.rule_id,
        matches.message_id,
        matches.window_name
    from clause_signal_matches as matches
    inner join clause_sizes
        on
            matches.rule_id = clause_sizes.rule_id
            and matches.clause_no = clause_sizes.clause_no
    where matches.matched_signal_count = clause_sizes.signal_count

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
