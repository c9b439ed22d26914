{#-
    Lower end of the 95% Wilson score interval for successes / trials, as a double.
    Shared by stage 1 (signal_label_counts) and shadow evaluation (hit_metric_columns).

    Arguments:
        successes: SQL expression, the count of successes (e.g. spam hits)
        trials: SQL expression, the count of trials (e.g. spam + ham hits)
        z: the normal quantile; 1.959963984540054 is the two-sided 95% quantile

    0 when trials is 0 (no evidence). Python twin: python_steps.metrics.wilson_lower_bound (a test
    proves both give the same numbers).
-#}
{% macro wilson_lower_bound(successes, trials, z=1.959963984540054) -%}
    {%- set n = '(' ~ trials ~ ')::double precision' -%}
    {%- set p = '((' ~ successes ~ ')::double precision / (' ~ trials ~ ')::double precision)' -%}
    {%- set zz = '(' ~ z ~ ')::double precision' -%}
    case
        when ({{ trials }}) = 0 then 0.0::double precision
        else greatest(0.0::double precision, (
            {{ p }} + {{ zz }} * {{ zz }} / (2.0::double precision * {{ n }})
            - {{ zz }} * sqrt(
                {{ p }} * (1.0::double precision - {{ p }}) / {{ n }}
                + {{ zz }} * {{ zz }} / (4.0::double precision * {{ n }} * {{ n }})
            )
        ) / (1.0::double precision + {{ zz }} * {{ zz }} / {{ n }}))
    end
{%- endmacro %}
