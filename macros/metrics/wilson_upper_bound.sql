{#-
    Upper end of the 95% Wilson score interval for successes / trials, as a double.

    Arguments:
        successes: SQL expression, the count of successes (e.g. ham hits)
        trials: SQL expression, the count of trials (e.g. all ham in the window)
        z: the normal quantile; 1.959963984540054 is the two-sided 95% quantile

    1 when trials is 0 (no evidence). Python twin: python_steps.metrics.wilson_upper_bound.
-#}
{% macro wilson_upper_bound(successes, trials, z=1.959963984540054) -%}
    {%- set n = '(' ~ trials ~ ')::double precision' -%}
    {%- set p = '((' ~ successes ~ ')::double precision / (' ~ trials ~ ')::double precision)' -%}
    {%- set zz = '(' ~ z ~ ')::double precision' -%}
    case
        when ({{ trials }}) = 0 then 1.0::double precision
        else least(1.0::double precision, (
            {{ p }} + {{ zz }} * {{ zz }} / (2.0::double precision * {{ n }})
            + {{ zz }} * sqrt(
                {{ p }} * (1.0::double precision - {{ p }}) / {{ n }}
                + {{ zz }} * {{ zz }} / (4.0::double precision * {{ n }} * {{ n }})
            )
        ) / (1.0::double precision + {{ zz }} * {{ zz }} / {{ n }}))
    end
{%- endmacro %}
