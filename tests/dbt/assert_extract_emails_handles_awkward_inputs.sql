{#- Values test of extract_emails: awkward inputs and the expected sorted distinct entity array
    (the same cases pass through python_steps.text.normalize; tests/integration/test_normalize_parity.py
    proves the two sides agree). Returns the failing cases. -#}

with

cases as (

    select * from (
        values
        (1, 'John.Doe+tag@Sub.Example.ORG.', array['john.doe+tag@sub.example.org']::text[]),
        (2, 'a@b.c is too short a tld, x@y.co ok', array['x@y.co']::text[]),
        (3, 'Write to info [at] shop.com or sales@shop[.]com', array['sales@shop.com']::text[])
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
        {{ entity_array(extract_emails(deobfuscate_text('p.prepared_text'))) }} as actual
    from prepared as p

)

select *
from actual
where actual is distinct from expected
