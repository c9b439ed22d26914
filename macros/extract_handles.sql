{#- @handles and t.me/<name> (telegram.me) names as a sorted distinct text[], lower case,
    without '@' (python_steps.normalize.extract_handles); t.me service paths (joinchat, share, ...)
    are not handles. Arguments: deobfuscated - deobfuscate_text(prepare_text(...)). -#}
{% macro extract_handles(deobfuscated) -%}
    {{ return(adapter.dispatch('extract_handles', 'patas')(deobfuscated)) }}
{%- endmacro %}

{% macro default__extract_handles(deobfuscated) -%}
    {{ exceptions.raise_compiler_error('extract_handles needs a port for ' ~ target.type) }}
{%- endmacro %}

{% macro postgres__extract_handles(deobfuscated) -%}
array(
    select h.handle collate "C"
    from (
        select r.m[1] as handle
        from regexp_matches(({{ deobfuscated }}), {{ text_pattern('handle') }}, 'g') as r (m)
        union
        select r.m[1] as handle
        from regexp_matches(({{ deobfuscated }}), {{ text_pattern('tme') }}, 'g') as r (m)
        where r.m[1] not in ('joinchat', 'share', 'addstickers', 'proxy', 'socks', 'iv')
    ) as h
    order by 1
)
{%- endmacro %}
