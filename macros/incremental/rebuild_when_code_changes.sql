{#-
    The batch-incremental stage-1 models (int_messages_normalized, int_message_signals_extracted,
    int_messages_enriched) append only the batches they have not seen, so a change of what they
    compute for a message (a normalizer or extractor macro, the model's own SQL) would otherwise
    reach new batches only, and a warehouse would hold two extractions side by side. Each keeps the
    stage-1 code version it was built with in <schema>.model_code_versions; when the run's version
    (var patas_stage1_code: an md5 over those files, python_steps.mining.reuse.stage1_code_version)
    differs, the pre-hook truncates the table and this run's append rebuilds it from every batch,
    which equals a full refresh (docs/contracts.md "Incremental stage 1"); a model configured
    unlogged whose table is still logged (built by an earlier version) is converted then, while
    it is empty. Without the var
    (a plain `dbt build`) nothing is checked or recorded. A separate table from model_input_states:
    retention clears those, and must not force a rebuild of what it already purged row by row.
    Usage: pre_hook rebuild_when_code_changes(), post_hook record_code_version().
-#}
{% macro stage1_code_version() -%}
    {%- set version = var('patas_stage1_code', none) -%}
    {%- if version is not none and not modules.re.fullmatch('[0-9a-f]{32}', version | string) -%}
        {{ exceptions.raise_compiler_error('patas_stage1_code must be an md5 (32 hex digits), not ' ~ (version | tojson)) }}
    {%- endif -%}
    {{- return(version) -}}
{%- endmacro %}

{% macro code_versions_table() -%}
    {{ this.schema }}.model_code_versions
{%- endmacro %}

{% macro rebuild_when_code_changes() -%}
    {%- set version = stage1_code_version() -%}
    {%- if version is not none %}
    create table if not exists {{ code_versions_table() }} (
        model_name text primary key,
        code_version text not null,
        recorded_at timestamptz not null
    );
    {%- if is_incremental() %}
    do $rebuild$ begin
        if (select v.code_version from {{ code_versions_table() }} as v
                where v.model_name = '{{ this.schema }}.{{ this.identifier }}') is distinct from '{{ version }}' then
            truncate {{ this }};
            {%- if config.get('unlogged') %}
            -- A warehouse built before the model was unlogged: converted while it is empty.
            if (select c.relpersistence from pg_class as c where c.oid = '{{ this }}'::regclass) = 'p' then
                alter table {{ this }} set unlogged;
            end if;
            {%- endif %}
        end if;
    end $rebuild$
    {%- endif %}
    {%- endif %}
{%- endmacro %}

{% macro record_code_version() -%}
    {%- set version = stage1_code_version() -%}
    {%- if version is not none %}
    insert into {{ code_versions_table() }} (model_name, code_version, recorded_at)
    values ('{{ this.schema }}.{{ this.identifier }}', '{{ version }}', clock_timestamp())
    on conflict (model_name) do update
        set code_version = excluded.code_version, recorded_at = excluded.recorded_at
    {%- endif %}
{%- endmacro %}
