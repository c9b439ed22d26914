{#-
    95% upper bound of a false positive rate, ham_hits / ham_total, as a double.

    Arguments:
        ham_hits: SQL expression, ham messages the rule hit
        ham_total: SQL expression, all ham messages in the window

    The rule of three (3 / ham_total, capped at 1) when the rule hit no ham, else the Wilson upper
    bound; 1 when the window has no ham. Python twin:
    python_steps.metrics.false_positive_rate_upper_bound.
-#}
{% macro false_positive_rate_upper_bound(ham_hits, ham_total) -%}
    case
        when ({{ ham_total }}) = 0 then 1.0::double precision
        when ({{ ham_hits }}) = 0 then least(1.0::double precision, 3.0::double precision / ({{ ham_total }})::double precision)
        else {{ wilson_upper_bound(ham_hits, ham_total) }}
    end
{%- endmacro %}
