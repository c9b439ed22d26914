{#- Values test of extract_phones: awkward inputs and the expected sorted distinct entity array
    (the same cases pass through python_steps.text.normalize; tests/integration/test_normalize_parity.py
    proves the two sides agree). Returns the failing cases. -#}

with

cases as (

    select * from (
        values
        (1, 'Call 0800-123-4567 now', array['08001234567']::text[]),
        (2, '+44 (0)7700 900123!', array['447700900123']::text[]),
        (3, 'ring (555) 123.4567 or +1 555 123 4567', array['15551234567', '5551234567']::text[]),
        (4, 'o8oo l23 4567 is not a phone, 08oo 123 4567 is', array['08001234567']::text[]),
        (5, 'short 12 34 56 and 2026 and 123456', '{}'::text[]),
        (6, '00 44 20 7946 0958', array['442079460958']::text[]),
        (7, 'tel:+7 912 345-67-89.', array['79123456789']::text[]),
        (8, '3 for 2 at 10:30 on 12/05', '{}'::text[]),
        (9, 'claim 0871277810910p/min, call09050000327', array['0871277810910', '09050000327']::text[]),
        (10, 'Netcollex 08700621170150p or Help08714742804', array['08700621170150', '08714742804']::text[]),
        (11, 'ref ab1234567890123456 and 1234567890123456789', '{}'::text[])
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
        {{ entity_array(extract_phones('p.prepared_text')) }} as actual
    from prepared as p

)

select *
from actual
where actual is distinct from expected
