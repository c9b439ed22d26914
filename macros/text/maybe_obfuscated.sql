{#- Whether deobfuscate_text may change a prepared text: exactly text ~ text_pattern('deobfuscate_check')
    (a necessary condition of any change), written as fixed-string tests plus one small regex
    on the texts that hold '. ' (the full alternation costs 2.2 s per 1M messages, this 1.2 s).
    Arguments: prepared - prepare_text output. -#}
{% macro maybe_obfuscated(prepared) -%}
    (
        strpos({{ prepared }}, ' .') > 0
        or strpos({{ prepared }}, 'hxxp') > 0
        or strpos({{ prepared }}, '[.]') > 0
        or strpos({{ prepared }}, '(.)') > 0
        or strpos({{ prepared }}, '{.}') > 0
        or strpos({{ prepared }}, '[dot]') > 0
        or strpos({{ prepared }}, '(dot)') > 0
        or (strpos({{ prepared }}, '. ') > 0 and {{ prepared }} ~ {{ text_pattern('spaced_tld_check') }})
    )
{%- endmacro %}
