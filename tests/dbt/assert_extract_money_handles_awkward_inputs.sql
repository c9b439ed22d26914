{#- Values test of extract_money: awkward inputs and the expected sorted distinct entity array
    (the same cases pass through python_steps.text.normalize; tests/integration/test_normalize_parity.py
    proves the two sides agree). Returns the failing cases. -#}

with

cases as (

    select * from (
        values
        (1, 'win £1,000 now', array['gbp 1000']::text[]),
        (2, 'only $ 20 or 500 euros', array['eur 500', 'usd 20']::text[]),
        (3, '100 руб и 5 pounds', array['gbp 5', 'rub 100']::text[]),
        (4, 'usd 3 and 1,0000 and €1.50', array['eur 1.50', 'usd 3']::text[]),
        (5, 'price 10 (no currency)', '{}'::text[])
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
        {{ entity_array(extract_money('p.prepared_text')) }} as actual
    from prepared as p

)

select *
from actual
where actual is distinct from expected
