{#- The sorted (C collation: code point order, as in Python), distinct, never-null text[] of the
    entity_value rows of an extract_* macro. Arguments: rows_sql - the SELECT an extract_* macro
    emits, e.g. entity_array(extract_phones('t.prepared_text')). -#}
{% macro entity_array(rows_sql) -%}
array(
    select distinct e.entity_value collate "C"
    from ({{ rows_sql }}) as e
    order by 1
)
{%- endmacro %}
