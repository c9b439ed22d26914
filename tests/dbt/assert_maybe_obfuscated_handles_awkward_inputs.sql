{#- Values test of maybe_obfuscated (the cheap de-obfuscation pre-check): awkward prepared texts and
    whether the check holds; it must agree with the regex text_pattern('deobfuscate_check') and
    hold wherever deobfuscate_text changes the text (tests/integration/test_normalize_parity.py
    checks the same over the shared dataset and generated strings). Returns the failing cases. -#}

with

cases as (

    select * from (
        values
        (1, 'visit bit. ly/abc now', true),
        (2, 'hxxps://evil.com', true),
        (3, 'evil[.]com and bad(dot)site', true),
        (4, 'shop . ru today', true),
        (5, 'see you. come home', true),
        (6, 'see you. bring food', false),
        (7, 'plain text, no dots at all', false),
        (8, 'a{.}b', true),
        (9, 'end of sentence.', false),
        (10, '', false)
    ) as t (case_no, input, expected)

),

checked as (

    select
        c.case_no,
        c.input,
        c.expected,
        {{ maybe_obfuscated('c.input') }} as actual,
        c.input ~ {{ text_pattern('deobfuscate_check') }} as regex,
        {{ deobfuscate_text('c.input') }} <> c.input as changes
    from cases as c

)

select *
from checked
where actual is distinct from expected
    or actual is distinct from regex
    or (changes and not actual)
