{#- Values test of extract_short_codes: awkward inputs and the expected sorted distinct entity array
    (the same cases pass through python_steps.text.normalize; tests/integration/test_normalize_parity.py
    proves the two sides agree). Returns the failing cases. -#}

with

cases as (

    select * from (
        values
        (1, 'Text FA to 87121 to enter', array['87121']::text[]),
        (2, 'txt STOP to 62468', array['62468']::text[]),
        (3, 'send 2 friends to 12345', '{}'::text[]),
        (4, 'reply WIN 2 80086 now', array['80086']::text[]),
        (5, 'call 87121 (no keyword)', '{}'::text[]),
        (6, 'text the password "MIX" to 85069', array['85069']::text[]),
        (7, 'text to 123 (too short) or to 1234567 (too long)', '{}'::text[])
    ) as t (case_no, input, expected)

),

prepared as (

    select c.case_no, c.input, c.expected, {{ prepare_text('c.input') }} as prepared_text
    from cases as c
    offset 0

),

actual as (

    select
        p.case_no,
        p.input,
        p.expected,
        {{ entity_array(extract_short_codes('p.prepared_text')) }} as actual
    from prepared as p

)

select *
from actual
where actual is distinct from expected
