{#- Seeds: a seed whose table already holds this very file (same checksum and column types, same
    row count: the stamp in the table's comment) is left as it is, instead of being truncated and
    reloaded on every run; any other case (a changed file, rows added or removed by hand,
    --full-refresh, a missing table) loads as dbt's own seed materialization does. -#}
{% materialization seed, adapter='postgres' %}

  {%- set stamp = 'patas seed ' ~ local_md5(model['checksum']['checksum'] ~ (config.get('column_types') | tojson)) -%}
  {%- set old_relation = adapter.get_relation(database=database, schema=schema, identifier=model['alias']) -%}
  {%- set target_relation = this.incorporate(type='table') -%}

  {%- if old_relation is not none and old_relation.is_table and not should_full_refresh() -%}
    {%- set stored = run_query(
        "select obj_description(" ~ dbt.string_literal(target_relation.render()) ~ "::regclass, 'pg_class')"
        ~ " = " ~ dbt.string_literal(stamp) ~ " || ' rows ' || (select count(*) from " ~ target_relation ~ ")"
    ) -%}
    {%- if stored.columns[0].values()[0] -%}
      {%- do store_result('agate_table', response='OK', agate_table=stored) -%}
      {% call noop_statement('main', 'UNCHANGED 0', 'UNCHANGED', 0) %}
        -- {{ target_relation }} already holds this seed file
      {% endcall %}
      {{ return({'relations': [target_relation]}) }}
    {%- endif -%}
  {%- endif -%}

  {%- set result = dbt.materialization_seed_default() -%}
  {% call statement('patas_seed_stamp') %}
    do $$ begin
      execute format('comment on table {{ target_relation }} is %L',
        {{ dbt.string_literal(stamp) }} || ' rows ' || (select count(*) from {{ target_relation }}));
    end $$
  {% endcall %}
  {% do adapter.commit() %}
  {{ return(result) }}

{% endmaterialization %}
