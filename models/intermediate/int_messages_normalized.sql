{{
    config(
        pre_hook=[
            "{{ rebuild_when_code_changes() }}",
            "{{ prefer_parallel_plans() }}",
            "set local jit = off",
            "{{ create_distinct_texts(ref('stg_raw__messages'), ['text']) }}",
        ],
        post_hook=["{{ prefer_parallel_plans(reset=true) }}", "{{ drop_distinct_texts() }}", "{{ record_code_version() }}"],
        materialized='incremental',
        incremental_strategy='append',
        unlogged=True,
        on_schema_change='fail',
        indexes=[
            {'columns': ['message_id'], 'unique': True},
            {'columns': ['batch_id']},
        ],
    )
}}

{#- The heavy text work of stage 1, once per message. Incremental on ingestion batches: batch ids
    only grow and a batch is committed whole, so a run reads only the batches it has not seen
    (through the staging view, which only renames and casts). Normalization is a per-row function
    of the text (no joins, no aggregates): prepared_text (the Unicode-clean,
    case-folded text entities are extracted from), normalized_text, its word tokens and the
    template signature. -#}

{%- set dedupe = dedupe_message_texts() %}

with

source as not materialized (

    select * from {{ ref('stg_raw__messages') }}
    {% if is_incremental() %}
    where batch_id > (select coalesce(max(batch_id), 0) from {{ this }})
    {% endif %}

),

{#- Texts to normalize: each message's, or each distinct text once (macro dedupe_message_texts:
    when the new messages repeat texts, as campaigns do; the pre-hook create_distinct_texts puts
    them in a table the parallel workers read, and the messages join their text's columns). Both
    give the same rows: every column below is a function of the text. -#}

texts as not materialized (

    {% if dedupe %}
    select text from {{ distinct_texts_relation() }}
    {% else %}
    select * from source
    {% endif %}

),

normalized as {{ 'materialized' if dedupe else 'not materialized' }} (

    {#- Every per-row text step is a lateral column (unnest of a one-element array: a function
        scan, evaluated once per row and never inlined into the expressions that read it; the
        word tokens travel as one string), so the chain runs in the parallel workers under one Gather. Squeezing and homoglyph folding
        hold scalar subqueries, which cannot run in a worker: the workers normalize the texts
        that need neither (all but a few percent) and compute their signature and tokens; the
        leader finishes the rest in this level and the next (figures: docs/benchmarks.md). -#}
    select
        s.*,
        p.prepared_text,
        q.quick_normalized_text,
        q_signature.quick_signature,
        q_tokens.quick_token_text,
        case
            when q.quick_normalized_text is null then {{ normalize_prepared_text('p.prepared_text') }}
            else q.quick_normalized_text
        end as normalized_text
    from texts as s
    cross join lateral unnest(array[{{ fold_text('s.text') }}]) as f (folded_text)
    cross join lateral unnest(array[{{ prepare_folded_text('f.folded_text') }}]) as p (prepared_text)
    cross join lateral unnest(array[
        case
            when not {{ needs_word_level_normalization('p.prepared_text') }}
                then {{ normalize_prepared_text('p.prepared_text', word_steps=false) }}
        end
    ]) as q (quick_normalized_text)
    cross join lateral unnest(array[{{ template_signature('q.quick_normalized_text') }}]) as q_signature (quick_signature)
    cross join lateral unnest(array[{{ word_tokens('q.quick_normalized_text', joined=true) }}]) as q_tokens (quick_token_text)
    offset 0

),

text_columns as (

    select
        s.*,
        case
            when s.quick_normalized_text is null then {{ template_signature('s.normalized_text') }}
            else s.quick_signature
        end as signature,
        case
            when s.quick_normalized_text is null then {{ word_tokens('s.normalized_text') }}
            else string_to_array(s.quick_token_text, ' ')
        end as word_tokens
    from normalized as s

),

joined as (

    {% if dedupe %}
    select
        m.*,
        t.prepared_text,
        t.normalized_text,
        t.signature,
        t.word_tokens
    from source as m
    inner join text_columns as t
        on t.text = m.text
    {% else %}
    select * from text_columns
    {% endif %}

),

final as (

    select
        ---------- ids
        message_id,
        external_id,
        batch_id,
        source_line,
        sender_id,
        chat_id,

        ---------- text
        text,
        normalized_text,
        {{ normalizer_version() }}::text as normalizer_version,
        signature,
        language,
        channel,
        meta,

        prepared_text,
        word_tokens,

        ---------- labels and outcomes
        is_spam,
        tas_action,
        user_complaint,
        unbanned,

        ---------- timestamps
        event_at,
        ingested_at

    from joined

)

select * from final
