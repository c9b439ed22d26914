{#- A message's label ('spam', 'ham' or 'unlabelled') from its is_spam (docs/contracts.md "Message
    relation for rules"). Arguments: is_spam - the boolean column. -#}
{% macro message_label(is_spam) -%}
case
    when {{ is_spam }} then 'spam'
    when not {{ is_spam }} then 'ham'
    else 'unlabelled'
end
{%- endmacro %}
