{{
    config(
        pre_hook=[
            "{{ rebuild_when_code_changes() }}",
            "{{ prefer_parallel_plans() }}",
            "set join_collapse_limit = 1",
            "set local jit = off",
            "set local work_mem = '128MB'",
            "{{ create_distinct_texts(ref('int_messages_normalized'), ['prepared_text', 'word_tokens']) }}",
        ],
        post_hook=[
            "{{ prefer_parallel_plans(reset=true) }}",
            "reset join_collapse_limit",
            "{{ drop_distinct_texts() }}",
            "{{ record_code_version() }}",
        ],
        materialized='incremental',
        incremental_strategy='append',
        unlogged=True,
        on_schema_change='fail',
        indexes=[
            {'columns': ['message_id', 'signal_kind', 'signal_value'], 'unique': True},
            {'columns': ['signal_value']},
            {'columns': ['batch_id']},
        ],
    )
}}

{#- One row per message x distinct signal (docs/contracts.md "Signals"), incremental on ingestion
    batches. Set-based for speed: each extractor runs as a lateral set-returning join, only on the
    messages that pass its cheap pre-check (a necessary condition of its pattern), so most
    messages cost a few regex tests; no correlated subqueries, so Postgres can run it in
    parallel. The key (message_id, signal_kind, signal_value) is unique by a unique index,
    created with the table (also by --full-refresh) and enforced by every later append: a duplicate fails the build
    (tests/dbt/assert_stage1_signal_keys_are_unique.sql checks the index is there and valid). One
    btree on signal_value serves the signal joins of shadow evaluation (rule_hits). Not a
    hash index: signal values repeat a lot (a common n-gram or template signature sits on
    100k rows), every insert walks its bucket's overflow chain, and at 1M messages (5.8M rows,
    29k distinct values) the hash build took 22.6 s against 3.6 s for a btree (deduplicated,
    sorted in parallel). The batch_id index
    makes the incremental filter (max batch_id of this table, read by every branch) an index
    probe instead of a scan of millions of rows (docs/benchmarks.md). -#}

{#- When the new messages repeat texts (macro dedupe_message_texts, the choice staging makes too),
    every extractor and the n-grams run once per distinct text (a table the pre-hook
    create_distinct_texts fills, read by the parallel workers), keyed by text_id, and the
    messages join their text's signals (arrays per text, a hash join on the text, then unnest;
    work_mem keeps that hash in memory); otherwise once per message, in the parallel workers. Same rows: every extractor is a function of the text. -#}
{%- set dedupe = dedupe_message_texts() %}
{%- set unit = 'texts' if dedupe else 'messages' %}
{%- set key = ['text_id'] if dedupe else ['message_id', 'batch_id'] %}

with

messages as not materialized (

    select
        message_id,
        batch_id,
        prepared_text,
        word_tokens,
        signature,
        is_spam
    from {{ ref('int_messages_normalized') }}
    {% if is_incremental() %}
    where batch_id > (select coalesce(max(batch_id), 0) from {{ this }})
    {% endif %}

),

{% if dedupe %}

texts as not materialized (

    select text_id, prepared_text, word_tokens
    from {{ distinct_texts_relation() }}

),

{% endif %}

deobfuscated as not materialized (

    select
        {{ key | join(', ') }},
        case
            when {{ maybe_obfuscated('prepared_text') }}
                then {{ deobfuscate_text('prepared_text') }}
            else prepared_text
        end as deobfuscated_text
    from {{ unit }}
    where prepared_text ~ {{ text_pattern('url_check') }}
        or {{ maybe_obfuscated('prepared_text') }}
        or strpos(prepared_text, '@') > 0

),

{#- Emails and handles need an '@' or a 'me/' (t.me links) in the de-obfuscated text, and
    de-obfuscation neither adds nor removes an '@' or a 'me/': a strpos on the prepared text
    picks the few messages to de-obfuscate for them, instead of a second and third pass of the
    pre-check regexes over every message (1M messages: 7.5 s of the model). -#}

at_sign_messages as not materialized (

    select
        {{ key | join(', ') }},
        case
            when {{ maybe_obfuscated('prepared_text') }}
                then {{ deobfuscate_text('prepared_text') }}
            else prepared_text
        end as deobfuscated_text
    from {{ unit }}
    where (strpos(prepared_text, '@') > 0 or strpos(prepared_text, 'me/') > 0)
        and (
            prepared_text ~ {{ text_pattern('url_check') }}
            or {{ maybe_obfuscated('prepared_text') }}
            or strpos(prepared_text, '@') > 0
        )

),

urls as materialized (

    select distinct {% for c in key %}m.{{ c }}, {% endfor %}e.entity_value as url
    from deobfuscated as m
    cross join lateral ({{ extract_urls('m.deobfuscated_text') }}) as e

),

hosts as (

    select distinct {{ key | join(', ') }}, {{ url_host('url') }} as host
    from urls

),

domains as (

    {{ resolve_registrable_domains('hosts') }}

),

{#- N-grams: only those that can matter downstream are kept, i.e. the vocabulary of n-grams seen
    in at least patas_min_spam_count spam messages over ALL labelled data (every batch, both
    windows). A superset of what stage 1 can make a candidate (mining-window spam count >= the
    minimum), of every conjunction partner drafting can use (joint spam >= the minimum) and so
    of every phrase a drafted rule evaluates; for a kept n-gram every message carrying it has its
    row (spam, ham and unlabelled, both windows). The vocabulary is an aggregate over the spam
    n-grams (each counted once per message); then every message is probed for vocabulary
    n-grams (its first token must be a vocabulary unigram: a kept n-gram's first word is a kept
    unigram). The vocabulary reaches the probe as arrays computed once (init plans, passed to
    the parallel workers: a CTE scan would keep the joins in the leader). When texts repeat,
    the vocabulary counts distinct spam token arrays and the probe runs on the distinct texts
    (1M generated messages: 86k distinct texts, 3.2k spam token arrays among 198k spam; see
    docs/benchmarks.md). Incremental: the
    vocabulary only grows (counts never shrink); an n-gram that joins it in this run (no ngram
    row yet) is back-filled over the older messages. -#}

all_spam as not materialized (

    select message_id, batch_id, word_tokens
    from {{ ref('int_messages_normalized') }}
    where is_spam
    {%- if is_incremental() %}
        {#- no new message, no new vocabulary n-gram: a re-run on unchanged data skips the scan #}
        and exists (select 1 from messages)
    {%- endif %}

),

{% if dedupe %}

spam_token_arrays as materialized (

    select word_tokens, count(*) as message_count
    from all_spam
    group by word_tokens

),

vocabulary as materialized (

    select g.ngram
    from ({{ word_ngram_rows('spam_token_arrays', first_occurrences=true, columns=['message_count']) }}) as g
    group by g.ngram
    having sum(g.message_count) >= {{ var('patas_min_spam_count') | int }}

),

{% else %}

vocabulary as materialized (

    select g.ngram
    from ({{ word_ngram_rows('all_spam', first_occurrences=true) }}) as g
    group by g.ngram
    having count(*) >= {{ var('patas_min_spam_count') | int }}

),

{% endif %}

{%- set vocabulary_ngrams = "unnest((select array_agg(ngram) from vocabulary))" %}
{%- set vocabulary_unigrams = "unnest((select array_agg(ngram) from vocabulary where strpos(ngram, ' ') = 0))" %}

{% if is_incremental() %}

previous_batch as materialized (

    select coalesce(max(batch_id), 0) as batch_id from {{ this }}

),

joined_vocabulary as materialized (

    {#- vocabulary n-grams with no row yet: every older message carrying one needs its row -#}
    select v.ngram
    from vocabulary as v
    where not exists (
        select 1
        from {{ this }} as t
        where t.signal_value = v.ngram
            and t.signal_kind = 'ngram'
    )

),

{%- set joined_ngrams = "unnest((select array_agg(ngram) from joined_vocabulary))" %}
{%- set joined_first_words = "unnest((select array_agg(distinct split_part(ngram, ' ', 1)) from joined_vocabulary))" %}

old_messages as not materialized (

    select s.message_id, s.batch_id, s.word_tokens
    from {{ ref('int_messages_normalized') }} as s
    where exists (select 1 from joined_vocabulary)
        and s.batch_id <= (select batch_id from previous_batch)
        and s.word_tokens && (
            select coalesce(array_agg(distinct split_part(ngram, ' ', 1)), '{}') from joined_vocabulary
        )

),

{% endif %}

ngrams as (

    select {% for c in key %}g.{{ c }}, {% endfor %}g.ngram
    from ({{ word_ngram_rows(unit, vocabulary_unigrams, first_occurrences=true, columns=key) }}) as g
    inner join {{ vocabulary_ngrams }} as v (ngram)
        on v.ngram = g.ngram

),

signals as (

    select {{ key | join(', ') }}, 'url' as signal_kind, url as signal_value
    from urls

    union all

    select {{ key | join(', ') }}, 'host' as signal_kind, host as signal_value
    from hosts

    union all

    select distinct {% for c in key %}h.{{ c }}, {% endfor %}'domain' as signal_kind, d.registrable_domain as signal_value
    from hosts as h
    inner join domains as d
        on d.host = h.host
    where d.registrable_domain is not null

    union all

    select {% for c in key %}m.{{ c }}, {% endfor %}'email' as signal_kind, e.entity_value as signal_value
    from at_sign_messages as m
    cross join lateral (select distinct x.entity_value from ({{ extract_emails('m.deobfuscated_text') }}) as x) as e
    where strpos(m.deobfuscated_text, '@') > 0

    union all

    select {% for c in key %}m.{{ c }}, {% endfor %}'handle' as signal_kind, e.entity_value as signal_value
    from at_sign_messages as m
    cross join lateral (select distinct x.entity_value from ({{ extract_handles('m.deobfuscated_text') }}) as x) as e
    where strpos(m.deobfuscated_text, '@') > 0 or strpos(m.deobfuscated_text, '.me/') > 0

    union all

    select {% for c in key %}m.{{ c }}, {% endfor %}'phone' as signal_kind, e.entity_value as signal_value
    from {{ unit }} as m
    cross join lateral (select distinct x.entity_value from ({{ extract_phones('m.prepared_text') }}) as x) as e
    where m.prepared_text ~ {{ text_pattern('phone_check') }}

    union all

    select {% for c in key %}m.{{ c }}, {% endfor %}'short_code' as signal_kind, e.entity_value as signal_value
    from {{ unit }} as m
    cross join lateral (select distinct x.entity_value from ({{ extract_short_codes('m.prepared_text') }}) as x) as e
    where m.prepared_text ~ {{ text_pattern('short_code_check') }}

    union all

    select {% for c in key %}m.{{ c }}, {% endfor %}'money' as signal_kind, e.entity_value as signal_value
    from {{ unit }} as m
    cross join lateral (select distinct x.entity_value from ({{ extract_money('m.prepared_text') }}) as x) as e
    where m.prepared_text ~ {{ text_pattern('money_check') }}

    union all

    -- vocabulary word 1-3 grams (python_steps.text.normalize.ngrams), distinct per message above
    select {{ key | join(', ') }}, 'ngram' as signal_kind, ngram as signal_value
    from ngrams

),

{% if dedupe %}

{#- one row per text with its signals in two arrays: the messages join it by a hash on the text
    (the small build side), then unnest -#}
text_signals as materialized (

    {#- grouped by text_id so the planner sizes this small and hashes it, not the messages -#}
    select
        min(t.prepared_text) as prepared_text,
        min(t.word_tokens) as word_tokens,
        array_agg(s.signal_kind) as signal_kinds,
        array_agg(s.signal_value) as signal_values
    from signals as s
    inner join texts as t
        on t.text_id = s.text_id
    group by s.text_id

),

{% endif %}

message_signals as (

    {% if dedupe %}
    select m.message_id, m.batch_id, s.signal_kind, s.signal_value
    from messages as m
    inner join text_signals as t
        on t.prepared_text = m.prepared_text
        and t.word_tokens = m.word_tokens
    cross join lateral unnest(t.signal_kinds, t.signal_values) as s (signal_kind, signal_value)
    {% else %}
    select message_id, batch_id, signal_kind, signal_value
    from signals
    {% endif %}

    union all

    select message_id, batch_id, 'signature' as signal_kind, signature as signal_value
    from messages

    {%- if is_incremental() %}

    union all

    select g.message_id, g.batch_id, 'ngram' as signal_kind, g.ngram as signal_value
    from ({{ word_ngram_rows('old_messages', joined_first_words, first_occurrences=true) }}) as g
    inner join {{ joined_ngrams }} as v (ngram)
        on v.ngram = g.ngram
    {%- endif %}

)

select
    message_id,
    signal_kind,
    signal_value,
    batch_id
from message_signals
