{#- Whether a message lies in a run window (docs/contracts.md "Windows"), as a plain predicate on
    its split bucket (hash mode) or event time (time mode): the one definition behind the view
    int_messages_windowed and the models that filter messages by window directly (a predicate on
    the message's own columns is planned on their statistics; a join with the view reads the
    messages twice and is estimated blind). Time mode: [start, end) of the window; a message in
    both windows belongs to mining. Hash mode: buckets below patas_evaluation_share are evaluation,
    the rest mining. Arguments: window_name - 'mining' or 'evaluation'; alias - the message
    relation's alias (its split_bucket and event_at columns), or none for bare column names. -#}
{% macro window_predicate(window_name, alias=none) -%}
    {%- set p = (alias ~ '.') if alias else '' -%}
    {%- if window_name not in ('mining', 'evaluation') -%}
        {{ exceptions.raise_compiler_error('window_predicate: unknown window ' ~ window_name) }}
    {%- endif -%}
    {%- if var('patas_split_mode') == 'time' -%}
        {%- set mining -%}
            ({{ p }}event_at >= {{ window_timestamp('patas_mining_start') }} and {{ p }}event_at < {{ window_timestamp('patas_mining_end') }})
        {%- endset -%}
        {%- if window_name == 'mining' -%}
            {{ mining }}
        {%- else -%}
            ({{ p }}event_at >= {{ window_timestamp('patas_evaluation_start') }} and {{ p }}event_at < {{ window_timestamp('patas_evaluation_end') }} and not {{ mining }})
        {%- endif -%}
    {%- else -%}
        {%- set share = var('patas_evaluation_share') | int -%}
        {%- if window_name == 'mining' -%}
            ({{ p }}split_bucket >= {{ share }})
        {%- else -%}
            ({{ p }}split_bucket < {{ share }})
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}

{#- The run window a message lies in ('mining', 'evaluation' or null), from window_predicate: the
    view int_messages_windowed and the models that take the window from the message's own columns.
    Arguments: alias - as for window_predicate. -#}
{% macro window_name_of(alias=none) -%}
    case
        when {{ window_predicate('mining', alias) }} then 'mining'
        when {{ window_predicate('evaluation', alias) }} then 'evaluation'
    end
{%- endmacro %}
