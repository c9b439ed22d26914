{#-
    Redundancy review: pairs of rules that hit the same messages on the evaluation window.
    Kept: for every rule, its top partners (var patas_overlap_partners, default 10) by shared hits;
    a pair is kept when it is in the top list of either rule.
-#}
{%- set top_partners = var('patas_overlap_partners', 10) | int -%}

with

hits as (

    select
        rule_hits.rule_id,
        rule_hits.message_id,
        coalesce(overridden.is_spam, enriched.is_spam) as is_spam
    from {{ ref('rule_hits') }} as rule_hits
    inner join {{ ref('int_messages_enriched') }} as enriched
        on rule_hits.message_id = enriched.message_id
    left join {{ ref('int_message_labels_overridden') }} as overridden
        on rule_hits.message_id = overridden.message_id
    where rule_hits.window_name = 'evaluation'

),

rule_sizes as (

    select
        rule_id,
        count(*) as hit_count
    from hits
    group by rule_id

),

pairs as (

    select
        a.rule_id as rule_a_id,
        b.rule_id as rule_b_id,
        count(*) as shared_hit_count,
        count(*) filter (where a.is_spam) as shared_spam_hit_count,
        count(*) filter (where not a.is_spam) as shared_ham_hit_count
    from hits as a
    inner join hits as b
        on
            a.message_id = b.message_id
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
