"""PATAS Python steps: the logic behind the Dagster assets, importable without Dagster."""

__version__ = "0.1.0"
