{#- Values test of extract_handles: awkward inputs and the expected sorted distinct entity array
    (the same cases pass through python_steps.text.normalize; tests/integration/test_normalize_parity.py
    proves the two sides agree). Returns the failing cases. -#}

with

cases as (

    select * from (
        values
        (1, 'follow @Spam_King and t.me/Deals_Channel', array['deals_channel', 'spam_king']::text[]),
        (2, 'mail a.b@c.com is not a handle', '{}'::text[]),
        (3, 't.me/joinchat/AbCdEf telegram.me/other_one', array['other_one']::text[]),
        (4, '@ab too short, @x_y_z ok', array['x_y_z']::text[]),
        (5, 'email@me and @@double', '{}'::text[])
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
        {{ entity_array(extract_handles(deobfuscate_text('p.prepared_text'))) }} as actual
    from prepared as p

)

select *
from actual
where actual is distinct from expected
