{#- Values test of resolve_registrable_domains (Public Suffix List seed): multi-label
    suffixes, private suffixes, wildcard and exception rules, a bare suffix, IDN. Returns the
    failing cases. -#}

with

cases as (

    select * from (
        values
        ('www.example.co.uk', 'example.co.uk'),
        ('t.me', 't.me'),
        ('foo.bar.github.io', 'bar.github.io'),
        ('x.ck', null),
        ('www.ck', 'www.ck'),
        ('a.b.c.kawasaki.jp', 'b.c.kawasaki.jp'),
        ('com', null),
        ('пример.рф', 'пример.рф'),
        ('bit.ly', 'bit.ly'),
        ('localhost', null)
    ) as t (host, expected)

),

resolved as (

    {{ resolve_registrable_domains('cases') }}

)

select c.host, c.expected, r.registrable_domain as actual
from cases as c
left join resolved as r
    on r.host = c.host
where r.registrable_domain is distinct from c.expected
