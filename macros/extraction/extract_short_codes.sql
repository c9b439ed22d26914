{#- Premium short codes (4-6 digits after text/txt/send/sms/reply ... to) as a sorted distinct
    text[] (python_steps.text.normalize.extract_short_codes). Arguments: prepared - prepare_text output. 
    Emits a SELECT of rows (entity_value), possibly repeated: use it in a lateral join, or wrap
    it in entity_array() for the sorted distinct array. -#}
{% macro extract_short_codes(prepared) -%}
select r.m[1] as entity_value
from regexp_matches({{ prepared }}, {{ text_pattern('short_code') }}, 'g') as r (m)
{%- endmacro %}
