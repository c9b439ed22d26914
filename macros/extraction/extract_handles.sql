{#- @handles and t.me/<name> (telegram.me) names as rows, lower case,
    without '@' (python_steps.text.normalize.extract_handles); t.me service paths (joinchat, share, ...)
    are not handles. Arguments: deobfuscated - deobfuscate_text(prepare_text(...)). 
    Emits a SELECT of rows (entity_value), possibly repeated: use it in a lateral join, or wrap
    it in entity_array() for the sorted distinct array. -#}
{% macro extract_handles(deobfuscated) -%}
select r.m[1] as entity_value
from regexp_matches({{ deobfuscated }}, {{ text_pattern('handle') }}, 'g') as r (m)
union all
select r.m[1] as entity_value
from regexp_matches({{ deobfuscated }}, {{ text_pattern('tme') }}, 'g') as r (m)
where r.m[1] not in ('joinchat', 'share', 'addstickers', 'proxy', 'socks', 'iv')
{%- endmacro %}
