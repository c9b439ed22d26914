{#- Emails as rows (python_steps.text.normalize.extract_emails), lower case.
    Arguments: deobfuscated - deobfuscate_text(prepare_text(...)). 
    Emits a SELECT of rows (entity_value), possibly repeated: use it in a lateral join, or wrap
    it in entity_array() for the sorted distinct array. -#}
{% macro extract_emails(deobfuscated) -%}
select r.m[1] as entity_value
from regexp_matches({{ deobfuscated }}, {{ text_pattern('email') }}, 'g') as r (m)
{%- endmacro %}
