{#-
    Input state of a derived table, for models that rebuild only when their inputs changed
    (signal_label_counts, stage1_uncovered_spam, int_hosts_resolved): an md5 over
      - the model's own code and the values of the vars it depends on (hashed here, in Jinja:
        a var's text never reaches SQL);
      - for each batch-incremental input (append-only on ingestion batches): the relation's
        identity (oid and file node: a full refresh or a truncate makes a new one) and its
        largest batch_id (an appended batch raises it);
      - for each small input read whole (the candidate set, the seeds): an md5 of its rows
        (digests: (relation, row expression) pairs).
    Same inputs, same state; a re-run whose state matches the stored one computes nothing (see
    rebuild_when_inputs_change below).
    Not covered: edits of the macros a model calls (run with --full-refresh after such edits)
    and deletions of single rows inside an input (PATAS never deletes messages).

    Arguments:
        batched: relations with a batch_id column (ref(...))
        digests: list of (relation, row expression) pairs
        vars: names of the dbt vars the model reads
-#}
{% macro input_state(batched=[], digests=[], vars=[]) -%}
    {%- set var_values = {} -%}
    {%- for name in vars -%}
        {%- do var_values.update({name: var(name, none)}) -%}
    {%- endfor -%}
    {%- set code_and_vars = local_md5(model.raw_code ~ '|' ~ tojson(var_values, sort_keys=true)) -%}
    md5(concat_ws('|',
        '{{ code_and_vars }}'
        {%- for relation in batched %},
        (select c.oid::text || '.' || c.relfilenode::text from pg_class as c
            where c.oid = '{{ relation }}'::regclass),
        (select coalesce(max(batch_id), 0)::text from {{ relation }})
        {%- endfor %}
        {%- for relation, row_expression in digests %},
        (select md5(coalesce(string_agg(r.x, chr(30) order by r.x collate "C"), ''))
            from (select {{ row_expression }} as x from {{ relation }}) as r)
        {%- endfor %}
    ))
{%- endmacro %}


{#-
    Models that rebuild only when their inputs change keep their input state in one bookkeeping
    table beside them, <schema>.model_input_states (model_name, input_state, recorded_at), written
    in the same transaction as the model (so an empty result is remembered too). Usage:
        pre_hook:  rebuild_when_inputs_change(state)   -- on an incremental run whose state
                   changed, delete the stored rows (all of them)
        model:     where inputs_changed(state)          -- compute only then
        post_hook: record_input_state(state)
    with state the model's input_state(...) expression. An unchanged input costs three state
    computations (index probes and small digests) and nothing else.
-#}
{% macro input_state_table() -%}
    {{ this.schema }}.model_input_states
{%- endmacro %}

{% macro stored_input_state() -%}
    (select s.input_state from {{ input_state_table() }} as s where s.model_name = '{{ this.schema }}.{{ this.identifier }}')
{%- endmacro %}

{% macro rebuild_when_inputs_change(state) -%}
    create table if not exists {{ input_state_table() }} (
        model_name text primary key,
        input_state text not null,
        recorded_at timestamptz not null
    );
    {%- if is_incremental() %}
    delete from {{ this }} where {{ stored_input_state() }} is distinct from {{ state }}
    {%- endif %}
{%- endmacro %}

{% macro inputs_changed(state) -%}
    {%- if is_incremental() -%}
        ({{ stored_input_state() }} is distinct from {{ state }})
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}

{% macro record_input_state(state) -%}
    insert into {{ input_state_table() }} (model_name, input_state, recorded_at)
    values ('{{ this.schema }}.{{ this.identifier }}', {{ state }}, clock_timestamp())
    on conflict (model_name) do update
        set input_state = excluded.input_state, recorded_at = excluded.recorded_at
{%- endmacro %}
