{#- Undo common URL obfuscation (python_steps.text.normalize.deobfuscate): hxxp -> http; [.] (.) {.}
    [dot] (dot) -> '.'; spaces around a dot before a common TLD removed.
    Arguments: prepared - prepare_text output. -#}
{% macro deobfuscate_text(prepared) -%}
regexp_replace(regexp_replace(regexp_replace(regexp_replace(
    ({{ prepared }}),
    {{ text_pattern('hxxp') }}, 'http', 'g'),
    {{ text_pattern('obfuscated_dot') }}, '.', 'g'),
    {{ text_pattern('spaced_dot') }}, '\1.\2', 'g'),
    {{ text_pattern('spaced_dot_2') }}, '\1.\2', 'g')
{%- endmacro %}
