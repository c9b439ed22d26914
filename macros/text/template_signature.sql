{#- Template signature (python_steps.text.normalize.template_signature): md5 hex of the normalized text
    with handles/emails ('@'), URLs ('/') and numbers with separators ('0') masked. Equal
    signatures = one template. Arguments: normalized - normalize_text output. -#}
{% macro template_signature(normalized) -%}
md5(regexp_replace(regexp_replace(regexp_replace(
    ({{ normalized }}),
    {{ text_pattern('mask_at') }}, '@', 'g'),
    {{ text_pattern('mask_url') }}, '/', 'g'),
    {{ text_pattern('mask_number') }}, '0', 'g'))
{%- endmacro %}
