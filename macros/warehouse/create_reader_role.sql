{#-
    Ensure the read-only consumer role exists and may reach a schema; idempotent, safe to run from
    several sessions at once. Used as a pre-hook of active_rules, whose dbt grants then give the role
    SELECT on that one table and nothing else. The role cannot log in: grant it to a login role,
        create role team_reader login password '...' in role patas_reader;

    Arguments:
        role: the role name (var patas_reader_role, default 'patas_reader'); a plain identifier
        schema: the schema the role may use (the model's schema)
-#}
{% macro create_reader_role(role, schema) -%}
    {%- if not modules.re.fullmatch('[a-z_][a-z0-9_]{0,62}', role) -%}
        {{ exceptions.raise_compiler_error('the reader role must be a plain lower-case identifier, not ' ~ (role | tojson)) }}
    {%- endif -%}
    do $patas$
    begin
        if not exists (select from pg_catalog.pg_roles where rolname = '{{ role }}') then
            create role {{ role }} nologin;
        end if;
    exception
        when duplicate_object or unique_violation then null;
    end
    $patas$;
    grant usage on schema {{ schema }} to {{ role }}
{%- endmacro %}
