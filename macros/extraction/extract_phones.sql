{#- Phone numbers as rows of canonical digits (python_steps.text.normalize.extract_phones):
    national and international formats, separators, brackets, '+' (and '+44 (0)...' trunk zeros),
    look-alike digits o->0, l/i->1 inside the number, a leading '00' dropped; 7-15 digits only,
    so a short run of digits is never a phone. A number may touch letters (glued to a word or a
    price, 'call09050000327', '0871277810910p'); only an adjacent digit ends it. Arguments: prepared - prepare_text output. 
    Emits a SELECT of rows (entity_value), possibly repeated: use it in a lateral join, or wrap
    it in entity_array() for the sorted distinct array. -#}
{% macro extract_phones(prepared) -%}
select p.phone as entity_value
from regexp_matches({{ prepared }}, {{ text_pattern('phone') }}, 'g') as r (m)
cross join lateral (
    select
        case
            when r.m[1] like '+%'
                then regexp_replace(translate(replace(r.m[1], '(0)', ''), 'oli', '011'), {{ text_pattern('non_digit') }}, '', 'g')
            else regexp_replace(translate(r.m[1], 'oli', '011'), {{ text_pattern('non_digit') }}, '', 'g')
        end as digits
) as d
cross join lateral (
    select
        case
            when r.m[1] not like '+%' and d.digits like '00%' then substr(d.digits, 3)
            else d.digits
        end as phone
) as p
where length(p.phone) between 7 and 15
{%- endmacro %}
