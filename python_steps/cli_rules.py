"""`patas rules ...`: rule cards, manual lifecycle control (audited) and exports."""

from __future__ import annotations

import getpass
import json
import sys
from pathlib import Path

import click
import psycopg

from python_steps.settings import load_settings


def _conn() -> psycopg.Connection:
    from python_steps.warehouse import connect, database_url

    return connect(database_url(load_settings()))


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


def _fail(message: str) -> None:
    click.secho(f"error: {message}", fg="red", err=True)
    sys.exit(2)


@click.group()
def rules() -> None:
    """List, inspect, promote, deprecate, pin, add and export rules."""


@rules.command("list")
@click.option("--status", type=click.Choice(["candidate", "shadow", "active", "deprecated"]), default=None)
@click.option("--json", "as_json", is_flag=True)
@click.option("--limit", type=int, default=200, show_default=True)
def list_rules(status: str | None, as_json: bool, limit: int) -> None:
    """One line per rule: id, status, tier, precision/recall on the evaluation window, description."""
    from python_steps import rule_cards

    with _conn() as conn:
        rows = rule_cards.list_rules(conn, status=status, limit=limit)
    if as_json:
        click.echo(json.dumps(rows, indent=2, sort_keys=True, default=str))
        return
    if not rows:
        click.echo("no rules" + (f" with status {status}" if status else ""))
        return
    click.echo(f"{'rule':<20} {'status':<10} {'tier':<12} {'prec':>6} {'recall':>6} {'hits':>6}  description")
    for r in rows:
        prec = "" if r.get("precision") is None else f"{r['precision']:.3f}"
        rec = "" if r.get("recall") is None else f"{r['recall']:.3f}"
        hits = "" if r.get("hit_count") is None else str(r["hit_count"])
        pin = " (pinned)" if r.get("is_pinned") else ""
        click.echo(
            f"{r['rule_id']:<20} {r['status']:<10} {r.get('tier') or '':<12} {prec:>6} {rec:>6} {hits:>6}  "
            f"{r['description']}{pin}"
        )


@rules.command("show")
@click.argument("rule_id")
@click.option("--json", "as_json", is_flag=True)
def show_rule(rule_id: str, as_json: bool) -> None:
    """The rule card: rule, tier, metrics over time, example hits, counter-examples, lineage, audit."""
    from python_steps import rule_cards

    with _conn() as conn:
        card = rule_cards.rule_card(conn, rule_id)
    if card is None:
        _fail(f"no rule {rule_id}")
    if as_json:
        click.echo(json.dumps(card, indent=2, sort_keys=True, default=str))
    else:
        click.echo(rule_cards.render_card(card))


def _manual(action: str, rule_id: str, reason: str, **kw) -> None:
    from python_steps import lifecycle

    fn = {
        "promote": lifecycle.promote_rule,
        "deprecate": lifecycle.deprecate_rule,
        "pin": lifecycle.pin_rule,
    }[action]
    with _conn() as conn:
        try:
            result = fn(conn, rule_id, reason=reason, actor=_actor(), **kw)
        except (lifecycle.LifecycleError, ValueError) as exc:
            _fail(str(exc))
        conn.commit()
    click.echo(json.dumps(result, sort_keys=True, default=str))


@rules.command("promote")
@click.argument("rule_id")
@click.option("--reason", required=True)
def promote(rule_id: str, reason: str) -> None:
    """Make a rule active by hand (audited)."""
    _manual("promote", rule_id, reason)


@rules.command("deprecate")
@click.argument("rule_id")
@click.option("--reason", required=True)
def deprecate(rule_id: str, reason: str) -> None:
    """Deprecate a rule by hand (audited)."""
    _manual("deprecate", rule_id, reason)


@rules.command("pin")
@click.argument("rule_id")
@click.option("--reason", required=True)
@click.option("--unpin", is_flag=True, help="Remove the pin instead.")
def pin(rule_id: str, reason: str, unpin: bool) -> None:
    """Pin a rule: its status is never changed automatically (audited)."""
    _manual("pin", rule_id, reason, pinned=not unpin)


@rules.command("add")
@click.option("--rule", "rule_json", default=None, help="A typed rule as JSON (or @file.json).")
@click.option("--sql", "raw_sql", default=None, help="A raw SQL rule (SELECT over the message relation).")
@click.option("--reason", required=True)
@click.option("--description", default=None)
def add(rule_json: str | None, raw_sql: str | None, reason: str, description: str | None) -> None:
    """Add a hand-written rule as a candidate; the next run shadow-evaluates it."""
    from python_steps import lifecycle

    if rule_json and rule_json.startswith("@"):
        rule_json = Path(rule_json[1:]).read_text()
    with _conn() as conn:
        try:
            result = lifecycle.add_manual_rule(
                conn, rule_json, raw_sql=raw_sql, reason=reason, actor=_actor(), description=description
            )
        except (lifecycle.LifecycleError, ValueError) as exc:
            _fail(str(exc))
        conn.commit()
    click.echo(json.dumps(result, sort_keys=True, default=str))


@rules.command("export")
@click.option("--format", "fmt", type=click.Choice(["sql", "rol", "json"]), required=True)
@click.option("--status", default="active", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Default: stdout.")
def export(fmt: str, status: str, out: Path | None) -> None:
    """Export rules for other engines: portable SQL, ROL (regex rule-engine JSON) or typed JSON."""
    from python_steps import exports

    with _conn() as conn:
        text = exports.export_rules(conn, fmt, status=status)
    if out:
        out.write_text(text)
        click.echo(f"wrote {out}", err=True)
    else:
        click.echo(text, nl=not text.endswith("\n"))
