"""`patas normalize`: raw message text normalized as PATAS does, the columns the exports read."""

from __future__ import annotations

import json
import sys
from typing import TextIO

import click

from python_steps.text.lines import normalize_jsonl, normalize_lines


@click.command("normalize")
@click.argument("source", type=click.File("r", encoding="utf-8"), default="-")
@click.option(
    "--jsonl",
    "mode",
    flag_value="jsonl",
    help="Input is JSONL; print each object with normalized_text and words.",
)
@click.option(
    "--text",
    "mode",
    flag_value="text",
    default=True,
    help="One message per line; print its normalized text (default).",
)
@click.option(
    "--words",
    "mode",
    flag_value="words",
    help="One message per line; print the words of its normalized text.",
)
@click.option("--field", default="text", show_default=True, help="The JSONL field holding the raw text.")
def normalize(source: TextIO, mode: str, field: str) -> None:
    """Normalize raw message text as PATAS does (what exported rules are matched against)."""
    out = sys.stdout
    if mode == "jsonl":
        try:
            for obj in normalize_jsonl(source, field=field):
                out.write(json.dumps(obj, ensure_ascii=False) + "\n")
        except ValueError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(2)
        return
    for line in normalize_lines(source, words=mode == "words"):
        out.write(line + "\n")
