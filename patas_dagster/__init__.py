"""PATAS orchestration: Dagster definitions that wire python_steps and the dbt project together."""
