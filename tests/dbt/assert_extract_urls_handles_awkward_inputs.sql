{#- Values test of extract_urls: awkward inputs and the expected sorted distinct entity array
    (the same cases pass through python_steps.text.normalize; tests/integration/test_normalize_parity.py
    proves the two sides agree). Returns the failing cases. -#}

with

cases as (

    select * from (
        values
        (1, 'visit WWW.Example.CO.UK/AbC?x=1).', array['http://www.example.co.uk/abc?x=1']::text[]),
        (2, 'hxxps://evil[.]com/login', array['https://evil.com/login']::text[]),
        (3, 'bad(dot)site(dot)ru and example . com', array['http://bad.site.ru', 'http://example.com']::text[]),
        (4, 't.me/spam_bot, https://bit.ly/3xYz!', array['http://t.me/spam_bot', 'https://bit.ly/3xyz']::text[]),
        (5, 'mail john@example.com is not a url', '{}'::text[]),
        (6, 'end.next sentence and ok.so', '{}'::text[]),
        (7, 'http://пример.рф/путь', array['http://пример.рф/путь']::text[]),
        (8, 'https://sub.domain.github.io:8080/a/b', array['https://sub.domain.github.io:8080/a/b']::text[])
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
        {{ entity_array(extract_urls(deobfuscate_text('p.prepared_text'))) }} as actual
    from prepared as p

)

select *
from actual
where actual is distinct from expected
