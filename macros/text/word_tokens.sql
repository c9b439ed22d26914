{#- The word tokens of a normalized text (python_steps.text.normalize.ngrams tokenizer): runs of word
    characters, as a text[] in order. Arguments: normalized - normalize_text output; joined - true
    for the tokens joined by single spaces (a text; string_to_array(x, ' ') splits it back, and
    gives the same array). -#}
{% macro word_tokens(normalized, joined=false) -%}
    {%- set text -%}
btrim(regexp_replace({{ normalized }}, {{ text_pattern('non_word') }}, ' ', 'g'), ' ')
    {%- endset -%}
    {%- if joined -%}
{{ text }}
    {%- else -%}
string_to_array({{ text }}, ' ')
    {%- endif -%}
{%- endmacro %}
