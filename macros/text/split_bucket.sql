{#- Hash-split bucket 0..99 of a template signature (docs/contracts.md "Windows"); Python:
    python_steps.text.normalize.split_bucket. Arguments: signature - template_signature output. -#}
{% macro split_bucket(signature) -%}
(('x' || substr(md5({{ signature }}), 1, 8))::bit(32)::bigint % 100)::int
{%- endmacro %}
