{#-
    The PATAS normalizer as SQL functions for warehouse consumers, generated from the very macros
    staging normalizes with (normalize_text, word_tokens), so a consumer applies exported rules to
    RAW message text and gets what shadow evaluation counted:

        patas.normalize_text(text) -> text        python_steps.text.normalize.normalize_text
        patas.normalized_words(text) -> text      the words of the normalized text joined by single
                                                  spaces (python_steps.text.normalize.tokens), the
                                                  column the portable SQL export's phrase rules read

    Both are immutable, strict and parallel safe. Run as an on-run-start hook (dbt_project.yml), so
    every dbt invocation leaves functions matching this checkout's macros; a function is replaced
    only when its definition changed (an md5 kept in its comment), under an advisory lock, so
    concurrent runs neither churn the catalog nor collide. The read-only role (var
    patas_reader_role, created here if needed) gets USAGE on schema patas and EXECUTE on the two
    functions: no table of the schema.
-#}
{% macro create_text_functions() -%}
    {%- set role = var('patas_reader_role', 'patas_reader') -%}
    {%- set functions = [
        ('normalize_text', 'select ' ~ normalize_text('message_text')),
        ('normalized_words', 'select ' ~ word_tokens('patas.normalize_text(message_text)', joined=true)),
    ] -%}
    {%- if '$patas_fn$' in functions | map(attribute=1) | join('') -%}
        {{ exceptions.raise_compiler_error('create_text_functions: a function body holds its own quote tag') }}
    {%- endif -%}
begin;
select pg_advisory_xact_lock(hashtext('patas.create_text_functions'));
create schema if not exists patas;
{{ create_reader_role(role, 'patas') }};
do $patas$
declare
    wanted text;
begin
    {%- for name, body in functions %}
    wanted := 'patas:{{ normalizer_version() | replace("'", "") }}:{{ local_md5(body) }}';
    if coalesce(obj_description(to_regprocedure('patas.{{ name }}(text)'), 'pg_proc'), '') <> wanted then
        execute $ddl$
            create or replace function patas.{{ name }}(message_text text) returns text
            language sql immutable strict parallel safe
            as $patas_fn$ {{ body }} $patas_fn$
        $ddl$;
        execute format('comment on function patas.{{ name }}(text) is %L', wanted);
    end if;
    {%- endfor %}
end
$patas$;
{%- for name, body in functions %}
grant execute on function patas.{{ name }}(text) to {{ role }};
{%- endfor %}
commit
{%- endmacro %}
