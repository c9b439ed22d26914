{{
    config(
        pre_hook="{{ prefer_parallel_plans() }}",
        post_hook="{{ prefer_parallel_plans(reset=true) }}",
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        indexes=[
            {'columns': ['signal_value'], 'type': 'hash'},
            {'columns': ['batch_id']},
        ],
    )
}}

{#- One row per message x distinct signal (docs/contracts.md "Signals"), incremental on ingestion
    batches. Set-based for speed: each extractor runs as a lateral set-returning join, only on the
    messages that pass its cheap pre-check (a necessary condition of its pattern), so most
    messages cost a few regex tests; no correlated subqueries, so Postgres can run it in
    parallel. One hash index on signal_value serves the signal joins of shadow evaluation
    (rule_hits): it builds in 60% of the time of a btree on (signal_kind, signal_value), and a
    message_id index was not used by any reader (measured at 100k messages). The batch_id index
    makes the incremental filter (max batch_id of this table, read by every branch) an index
    probe instead of a scan of millions of rows (38 s -> seconds for one extra day at 1M). -#}

with

messages as not materialized (

    select
        message_id,
        batch_id,
        prepared_text,
        word_tokens,
        signature
    from {{ ref('stg_raw__messages') }}
    {% if is_incremental() %}
    where batch_id > (select coalesce(max(batch_id), 0) from {{ this }})
    {% endif %}

),

deobfuscated as not materialized (

    select
        message_id,
        batch_id,
        case
            when prepared_text ~ {{ text_pattern('deobfuscate_check') }}
                then {{ deobfuscate_text('prepared_text') }}
            else prepared_text
        end as deobfuscated_text
    from messages
    where prepared_text ~ {{ text_pattern('url_check') }}
        or prepared_text ~ {{ text_pattern('deobfuscate_check') }}
        or strpos(prepared_text, '@') > 0

),

urls as materialized (

    select distinct m.message_id, m.batch_id, e.entity_value as url
    from deobfuscated as m
    cross join lateral ({{ extract_urls('m.deobfuscated_text') }}) as e

),

hosts as (

    select distinct message_id, batch_id, {{ url_host('url') }} as host
    from urls

),

domains as (

    {{ resolve_registrable_domains('hosts') }}

),

stop_words as (

    {#- is_stop, tested with coalesce(): a plain "left join ... where word is null" becomes an
        anti join whose row estimate collapses to 1 and the plan to nested loops (100x slower). -#}
    select word, true as is_stop
    from {{ ref('stop_words') }}

),

token_positions as (

    {#- One row per token position with the next two tokens (null past the end): unnest over
        shifted copies of the array zips them in one pass. -#}
    select m.message_id, m.batch_id, u.t1, u.t2, u.t3
    from messages as m
    cross join lateral unnest(m.word_tokens, m.word_tokens[2:], m.word_tokens[3:]) as u (t1, t2, t3)

),

ngrams as (

    select p.message_id, p.batch_id, v.ngram
    from token_positions as p
    left join stop_words as s1
        on s1.word = p.t1
    left join stop_words as s2
        on s2.word = p.t2
    left join stop_words as s3
        on s3.word = p.t3
    cross join lateral (
        values
            (p.t1, true),
            (p.t1 || ' ' || p.t2, not coalesce(s2.is_stop, false) and p.t2 !~ {{ text_pattern('all_digits') }}),
            (p.t1 || ' ' || p.t2 || ' ' || p.t3, not coalesce(s3.is_stop, false) and p.t3 !~ {{ text_pattern('all_digits') }})
    ) as v (ngram, is_last_token_ok)
    where not coalesce(s1.is_stop, false)
        and p.t1 !~ {{ text_pattern('all_digits') }}
        and v.is_last_token_ok
        and v.ngram is not null

),

signals as (

    select message_id, batch_id, 'url' as signal_kind, url as signal_value
    from urls

    union all

    select message_id, batch_id, 'host' as signal_kind, host as signal_value
    from hosts

    union all

    select distinct h.message_id, h.batch_id, 'domain' as signal_kind, d.registrable_domain as signal_value
    from hosts as h
    inner join domains as d
        on d.host = h.host
    where d.registrable_domain is not null

    union all

    select distinct m.message_id, m.batch_id, 'email' as signal_kind, e.entity_value as signal_value
    from deobfuscated as m
    cross join lateral ({{ extract_emails('m.deobfuscated_text') }}) as e
    where strpos(m.deobfuscated_text, '@') > 0

    union all

    select distinct m.message_id, m.batch_id, 'handle' as signal_kind, e.entity_value as signal_value
    from deobfuscated as m
    cross join lateral ({{ extract_handles('m.deobfuscated_text') }}) as e
    where strpos(m.deobfuscated_text, '@') > 0 or strpos(m.deobfuscated_text, '.me/') > 0

    union all

    select distinct m.message_id, m.batch_id, 'phone' as signal_kind, e.entity_value as signal_value
    from messages as m
    cross join lateral ({{ extract_phones('m.prepared_text') }}) as e
    where m.prepared_text ~ {{ text_pattern('phone_check') }}

    union all

    select distinct m.message_id, m.batch_id, 'short_code' as signal_kind, e.entity_value as signal_value
    from messages as m
    cross join lateral ({{ extract_short_codes('m.prepared_text') }}) as e
    where m.prepared_text ~ {{ text_pattern('short_code_check') }}

    union all

    select distinct m.message_id, m.batch_id, 'money' as signal_kind, e.entity_value as signal_value
    from messages as m
    cross join lateral ({{ extract_money('m.prepared_text') }}) as e
    where m.prepared_text ~ {{ text_pattern('money_check') }}

    union all

    select message_id, batch_id, 'signature' as signal_kind, signature as signal_value
    from messages

    union all

    -- word 1-3 grams (python_steps.normalize.ngrams): no stop word or bare number at either edge
    select distinct message_id, batch_id, 'ngram' as signal_kind, ngram as signal_value
    from ngrams

)

select
    message_id,
    signal_kind,
    signal_value,
    batch_id
from signals
