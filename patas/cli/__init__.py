"""The ``patas`` command: one click group (:mod:`patas.cli.main`) with ``rules`` and ``bench`` attached."""

from patas.cli.main import main

__all__ = ["main"]
