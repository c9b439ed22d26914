{#- Undo common URL obfuscation (python_steps.text.normalize.deobfuscate): hxxp -> http; [.] (.) {.}
    [dot] (dot) -> '.'; spaces around a dot before a common TLD removed.
    Arguments: prepared - prepare_text output. -#}
{% macro deobfuscate_text(prepared) -%}
    {{ return(adapter.dispatch('deobfuscate_text', 'patas')(prepared)) }}
{%- endmacro %}

{% macro default__deobfuscate_text(prepared) -%}
    {{ exceptions.raise_compiler_error('deobfuscate_text needs a port for ' ~ target.type) }}
{%- endmacro %}

{% macro postgres__deobfuscate_text(prepared) -%}
regexp_replace(regexp_replace(regexp_replace(regexp_replace(
    ({{ prepared }}),
    {{ text_pattern('hxxp') }}, 'http', 'g'),
    {{ text_pattern('obfuscated_dot') }}, '.', 'g'),
    {{ text_pattern('spaced_dot') }}, '\1.\2', 'g'),
    {{ text_pattern('spaced_dot_2') }}, '\1.\2', 'g')
{%- endmacro %}


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
