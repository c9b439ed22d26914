{#-
    A post-hook that keeps a SQL function able to rebuild the model's table in place:
    <schema>.refresh_<model>() deletes every row and inserts the model's own compiled query again.
    Python calls it in the transaction of a manual lifecycle action (python_steps.lifecycle), so
    consumers reading the table (the reader role's SELECT grant stays: the table is not replaced)
    see the action when it commits, not at the next run. Created in the model's transaction, from
    the SQL dbt just ran, so function and table never disagree; the body refers to relations by
    name, so later rebuilds of the inputs keep it valid; by schema and name only (dbt writes
    "database"."schema"."name"), so a copy of the warehouse under another database name (a restore,
    CREATE DATABASE ... TEMPLATE) keeps it valid too.

    Arguments:
        relation: the model's relation (this)
-#}
{% macro create_refresh_function(relation) -%}
    {%- set query = model.compiled_code | replace('"' ~ relation.database ~ '".', '') -%}
    {%- if '$patas_refresh$' in query -%}
        {{ exceptions.raise_compiler_error('create_refresh_function: the query holds the quote tag') }}
    {%- endif -%}
create or replace function {{ relation.schema }}.refresh_{{ relation.identifier }}() returns void
language sql volatile
as $patas_refresh$
    delete from {{ relation.include(database=False) }};
    insert into {{ relation.include(database=False) }}
    {{ query }};
$patas_refresh$
{%- endmacro %}
