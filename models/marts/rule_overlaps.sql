{#-
    Redundancy review: pairs of rules that hit the same messages on the evaluation window.
    Kept: for every rule, its top partners (var patas_overlap_partners, default 10) by shared hits;
    a pair is kept when it is in the top list of either rule.
-#}
{%- set top_partners = var('patas_overlap_partners', 10) | int -%}

{#- work_mem: the set members and their pairs sorted and aggregated in memory (docs/benchmarks.md, session 17). -#}
{{ config(pre_hook=["set local work_mem = '256MB'"]) }}

with

message_rules as (

    select
        message_id,
        array_agg(rule_id) as rule_ids
    from {{ ref('rule_hits') }}
    where window_name = 'evaluation'
    group by message_id

),

{#- Messages hit by the same rules with the same label count alike in every pair: each such
    set is expanded into its pairs once, weighted by its messages (docs/benchmarks.md, session 13). #}
rule_sets as (

    select
        row_number() over () as set_no,
        rule_ids,
        is_spam,
        message_count
    from (
        select
            message_rules.rule_ids,
            coalesce(overridden.is_spam, enriched.is_spam) as is_spam,
            count(*) as message_count
        from message_rules
        inner join {{ ref('int_messages_enriched') }} as enriched
            on message_rules.message_id = enriched.message_id
        left join {{ ref('int_message_labels_overridden') }} as overridden
            on message_rules.message_id = overridden.message_id
        group by message_rules.rule_ids, coalesce(overridden.is_spam, enriched.is_spam)
    ) as grouped

),

set_members as (

    select
        rule_sets.set_no,
        rule_sets.is_spam,
        rule_sets.message_count,
        member.rule_id
    from rule_sets
    cross join lateral unnest(rule_sets.rule_ids) as member (rule_id)

),

rule_sizes as (

    select
        rule_id,
        sum(message_count)::bigint as hit_count
    from set_members
    group by rule_id

),

pairs as (

    select
        a.rule_id as rule_a_id,
        b.rule_id as rule_b_id,
        sum(a.message_count)::bigint as shared_hit_count,
        coalesce(sum(a.message_count) filter (where a.is_spam), 0)::bigint as shared_spam_hit_count,
        coalesce(sum(a.message_count) filter (where not a.is_spam), 0)::bigint as shared_ham_hit_count
    from set_members as a
    inner join set_members as b
        on
            a.set_no = b.set_no
            and a.rule_id < b.rule_id
    group by a.rule_id, b.rule_id

),

directed as (

    select
        rule_a_id as rule_id,
        rule_b_id as partner_rule_id,
        shared_hit_count
    from pairs

    union all

    select
        rule_b_id as rule_id,
        rule_a_id as partner_rule_id,
        shared_hit_count
    from pairs

),

partner_ranks as (

    select
        rule_id,
        partner_rule_id,
        row_number() over (
            partition by rule_id
            order by shared_hit_count desc, partner_rule_id
        ) as partner_rank
    from directed

),

kept_pairs as (

    select
        least(rule_id, partner_rule_id) as rule_a_id,
        greatest(rule_id, partner_rule_id) as rule_b_id,
        min(partner_rank) as best_partner_rank
    from partner_ranks
    where partner_rank <= {{ top_partners }}
    group by least(rule_id, partner_rule_id), greatest(rule_id, partner_rule_id)

),

final as (

    select
        pairs.rule_a_id,
        pairs.rule_b_id,
        'evaluation'::text as window_name,
        a_sizes.hit_count as rule_a_hit_count,
        b_sizes.hit_count as rule_b_hit_count,
        pairs.shared_hit_count,
        pairs.shared_spam_hit_count,
        pairs.shared_ham_hit_count,
        pairs.shared_hit_count::double precision
        / (a_sizes.hit_count + b_sizes.hit_count - pairs.shared_hit_count)::double precision
            as jaccard,
        pairs.shared_hit_count::double precision
        / least(a_sizes.hit_count, b_sizes.hit_count)::double precision
            as containment,
        kept_pairs.best_partner_rank
    from pairs
    inner join kept_pairs
        on
            pairs.rule_a_id = kept_pairs.rule_a_id
            and pairs.rule_b_id = kept_pairs.rule_b_id
    inner join rule_sizes as a_sizes
        on pairs.rule_a_id = a_sizes.rule_id
    inner join rule_sizes as b_sizes
        on pairs.rule_b_id = b_sizes.rule_id

)

select * from final
