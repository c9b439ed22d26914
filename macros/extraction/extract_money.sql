{#- Money amounts with a currency as rows of '<iso code> <amount>'
    (python_steps.text.normalize.extract_money): '£1,000' -> 'gbp 1000', '500 euros' -> 'eur 500'.
    Arguments: prepared - prepare_text output. 
    Emits a SELECT of rows (entity_value), possibly repeated: use it in a lateral join, or wrap
    it in entity_array() for the sorted distinct array. -#}
{% macro extract_money(prepared) -%}
select c.code || ' ' || regexp_replace(r.m[1], {{ text_pattern('money_amount_strip') }}, '', 'g') as entity_value
    from (
        select m from regexp_matches({{ prepared }}, {{ text_pattern('money_prefix') }}, 'g') as p (m)
        union all
        select m from regexp_matches({{ prepared }}, {{ text_pattern('money_suffix') }}, 'g') as s (m)
    ) as r (m)
    cross join lateral (
        select
            case regexp_replace(r.m[1], {{ text_pattern('money_currency_strip') }}, '', 'g')
                when '$' then 'usd' when 'usd' then 'usd' when 'dollars' then 'usd'
                when '£' then 'gbp' when 'gbp' then 'gbp' when 'pounds' then 'gbp'
                when '€' then 'eur' when 'eur' then 'eur' when 'euro' then 'eur' when 'euros' then 'eur'
                when '₽' then 'rub' when 'rub' then 'rub' when 'руб' then 'rub'
                when '¥' then 'jpy'
            end as code
    ) as c
    where c.code is not null
{%- endmacro %}
