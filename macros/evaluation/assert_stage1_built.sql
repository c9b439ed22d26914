{#-
    Pre-hook of rule_hits: fail the shadow evaluation when the stage-1 tables it reads hold no row
    while raw.messages holds messages. Those tables are unlogged (docs/contracts.md "Incremental
    stage 1"): a Postgres crash empties them, and retention empties the signals; the next stage-1
    build refills them from every batch. A run that evaluates without that build (the HTTP API's
    shadow re-evaluation) would otherwise measure every rule at zero hits.
-#}
{% macro assert_stage1_built(messages, signals) -%}
    do $stage1$ begin
        if exists (select 1 from raw.messages)
            and (not exists (select 1 from {{ messages }}) or not exists (select 1 from {{ signals }})) then
            raise exception 'the stage-1 tables are empty while raw.messages holds messages (a Postgres crash empties these unlogged tables, retention empties the signals): run `patas run` to rebuild them, then evaluate';
        end if;
    end $stage1$
{%- endmacro %}
