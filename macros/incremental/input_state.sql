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
