{#- Seeds' rows, loaded as dbt's default__load_csv_rows does (batches of get_batch_size() rows, one
    bound parameter per cell, the same statements), with each batch's placeholders built at once
    instead of one get_binding_char() call per cell. -#}
{% macro postgres__load_csv_rows(model, agate_table) %}
  {%- set batch_size = get_batch_size() -%}
  {%- set cols_sql = get_seed_column_quoted_csv(model, agate_table.column_names) -%}
  {%- set row_sql = '(' ~ ([get_binding_char()] * (agate_table.column_names | length)) | join(',') ~ ')' -%}
  {%- set statements = [] -%}
  {%- for chunk in agate_table.rows | batch(batch_size) -%}
    {%- set bindings = [] -%}
    {%- for row in chunk -%}
      {%- do bindings.extend(row) -%}
    {%- endfor -%}
    {%- set sql -%}
      insert into {{ this.render() }} ({{ cols_sql }}) values {{ ([row_sql] * (chunk | length)) | join(',') }}
    {%- endset -%}
    {%- do adapter.add_query(sql, bindings=bindings, abridge_sql_log=True) -%}
    {%- if loop.index0 == 0 -%}
      {%- do statements.append(sql) -%}
    {%- endif -%}
  {%- endfor -%}
  {{ return(statements[0]) }}
{% endmacro %}
