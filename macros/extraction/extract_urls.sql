{#- URLs as rows (python_steps.text.normalize.extract_urls): with or without
    scheme, www., bare domain.tld/path (path, or a common TLD, required when there is no scheme or
    www.), trailing punctuation dropped, 'http://' added when no scheme. Lower case throughout
    (the text is case-folded). Arguments: deobfuscated - deobfuscate_text(prepare_text(...)). 
    Emits a SELECT of rows (entity_value), possibly repeated: use it in a lateral join, or wrap
    it in entity_array() for the sorted distinct array. -#}
{% macro extract_urls(deobfuscated) -%}
select (case when u.url ~ {{ text_pattern('has_scheme') }} then u.url else 'http://' || u.url end) as entity_value
from regexp_matches({{ deobfuscated }}, {{ text_pattern('url') }}, 'g') as r (m)
cross join lateral (select regexp_replace(r.m[1], {{ text_pattern('trailing_punct') }}, '') as url) as u
where u.url ~ {{ text_pattern('url_keep') }}
{%- endmacro %}
