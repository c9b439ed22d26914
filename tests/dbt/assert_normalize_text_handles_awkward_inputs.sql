{#- Values test of normalize_text and template_signature: case folding beyond ASCII, NFKC,
    zero-width and bidi characters, homoglyphs in mixed-script words (Russian words stay Russian),
    digit look-alikes between letters, squeezed repeats, whitespace. Returns the failing cases. -#}

with

cases as (

    select * from (
        values
        (1, 'FREE entry!!! Txt WIN', 'free entry!! txt win', 'a3d836d762afa0982f7292cd368e533c'),
        (2, 'pаypal.com аccount', 'paypal.com account', 'a131e0c815f0ba9b1182ce78d58fd893'),
        (3, 'Привeт, Пpoдам', 'привет, продам', '6c044496decd7804060cdfc83e457fbc'),
        (4, 'c1aim y0ur pr1ze n0w, fr33', 'claim your prlze now, fr33', '149b6a10b88fef8a5bf1e756f0657443'),
        (5, U&'zero\200bwidth\202e bidi', 'zerowidth bidi', '99f3888ced58f96327042753ba276eb7'),
        (6, 'ＦＲＥＥ Kﬁ', 'free kfi', 'feb3d4e4c72ab504034ca5b6e0bcb0d2'),
        (7, 'ΣΟΦΟΣ İ ẞ', 'σοφοσ İ ß', '8395eab121f0dbe841081e4f3b16f932'),
        (8, 'Ellipsis... and !!!!!! and ааааа', 'ellipsis... and !! and аа', '61f390cfce75873b95a282e51a014b22'),
        (9, U&'  tabs\0009and\000anewlines  ', 'tabs and newlines', '8cc24d18892946ff5b47f109d78f357a'),
        (10, U&'У\0308 composed', 'ӱ composed', 'e732f2671e5a5cbdb40dacb8d28165b3')
    ) as t (case_no, input, expected_normalized, expected_signature)

),

actual as (

    select
        c.*,
        {{ normalize_text('c.input') }} as actual_normalized,
        {{ template_signature(normalize_text('c.input')) }} as actual_signature
    from cases as c

)

select *
from actual
where actual_normalized is distinct from expected_normalized
    or actual_signature is distinct from expected_signature
