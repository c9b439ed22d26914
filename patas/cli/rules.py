"""`patas rules ...`: rule cards, manual lifecycle control (audited) and exports."""

from __future__ import annotations

import getpass
import json
import sys
from pathlib import Path

import click
import psycopg


def _conn() -> psycopg.Connection:
    from patas.cli.common import warehouse_url
    from python_steps.warehouse import connect

    return connect(warehouse_url())


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
@click.option("--limit", type=click.IntRange(min=1), default=200, show_default=True)
def list_rules(status: str | None, as_json: bool, limit: int) -> None:
    """One line per rule: id, status, tier, precision/recall on the evaluation window, description."""
    from python_steps.publish import cards

    with _conn() as conn:
        rows = cards.list_rules(conn, status=status, limit=limit)
    if as_json:
        click.echo(json.dumps(rows, indent=2, sort_keys=True, default=str))
        return
    if not rows:
        click.echo("no rules" + (f" with status {status}" if status else "") + " (run `patas run` first?)")
        return
    click.echo(f"{'rule':<20} {'status':<10} {'tier':<12} {'prec':>6} {'recall':>6} {'hits':>6}  description")
    for r in rows:
        pin = " (pinned)" if r.get("is_pinned") else ""
        click.echo(
            f"{r['rule_id']:<20} {r['status']:<10} {r.get('tier') or '':<12} {_num(r.get('precision')):>6} "
            f"{_num(r.get('recall')):>6} {_num(r.get('hit_count'), 0):>6}  {r['description']}{pin}"
        )


def _num(value: object, digits: int = 3) -> str:
    if value is None:
        return ""
    return f"{value:.{digits}f}" if digits else str(value)


def render_card(card: dict) -> str:
    """The rule card as text: what the rule is, where it stands, the evidence, examples, history."""
    out = [f"{card['rule_id']}  v{card['version']}  {card['description']}"]
    pin = ", pinned" if card.get("is_pinned") else ""
    out.append(f"status {card['status']} ({card.get('tier') or 'FEATURE_ONLY'}{pin})")
    if card.get("status_reason"):
        out.append(f"reason: {card['status_reason']}")
    lineage = card["lineage"]
    out.append(
        f"origin: {lineage['origin']}"
        + (f", pattern {lineage['pattern_id']}" if lineage["pattern_id"] else "")
    )
    out.append(f"rule: {json.dumps(card['rule'], sort_keys=True, ensure_ascii=False)}")
    out.append(f"sql:  {card['sql_expression']}")
    m = card.get("latest_metrics")
    if m:
        out.append(
            f"evaluation: {m['hit_count']} hits = {m['spam_hit_count']} spam + {m['ham_hit_count']} ham"
            f" + {m['unlabelled_hit_count']} unlabelled; precision {_num(m['precision'])}"
            f" (95% lower bound {_num(m['precision_lower_bound'])}), recall {_num(m['recall'])},"
            f" FPR upper bound {_num(m['false_positive_rate_upper_bound'], 4)}"
        )
    else:
        out.append("evaluation: not evaluated yet")
    e = card.get("evidence")
    if e:
        folds = (
            f"{e['evidence_folds_used']} of {e['evidence_folds']} mining folds + the evaluation window"
            if e["evidence_folds"]
            else "the evaluation window"
        )
        out.append(
            f"evidence ({folds}): {e['evidence_spam_hits']} spam + {e['evidence_ham_hits']} ham held-out hits"
            f" (FPR {_num(e['evidence_false_positive_rate'], 4)} of {e['evidence_ham_total']} ham);"
            f" {e['rule_kind']} prior {_num(e['prior_mean'])} (strength {_num(e['prior_strength'], 1)});"
            f" posterior precision {_num(e['posterior_mean'])} (95% lower bound {_num(e['posterior_lower_bound'])})"
        )
        if e.get("held_reason") and card.get("status") == "shadow":
            out.append(f"not active: {e['held_reason']}")
    for title, key in (("example hits", "example_hits"), ("ham it matches", "ham_matched"),
                       ("nearest ham it does not match", "nearest_ham_not_matched")):  # fmt: skip
        rows = card.get(key) or []
        if rows:
            out.append(f"{title}:")
            out += [f"  - {' '.join(str(r.get('text') or '').split())[:100]}" for r in rows[:5]]
    if lineage["signals"]:
        sig = ", ".join(f"{s['signal_kind']}={s['signal_value']}" for s in lineage["signals"][:8])
        out.append(f"signals: {sig}")
    if card.get("overlaps"):
        out.append(
            "overlaps: "
            + ", ".join(f"{o['other_rule_id']} ({o['shared_hit_count']})" for o in card["overlaps"])
        )
    if card.get("audit"):
        out.append("audit:")
        out += [
            f"  {a['at']}  {a['from_status'] or 'new'} -> {a['to_status']}  {a['actor']}: {a['reason']}"
            for a in card["audit"]
        ]
    return "\n".join(out)


@rules.command("show")
@click.argument("rule_id")
@click.option("--json", "as_json", is_flag=True)
def show_rule(rule_id: str, as_json: bool) -> None:
    """The rule card: rule, tier, metrics over time, example hits, counter-examples, lineage, audit.

    RULE_ID is a rule id or a unique prefix of one.
    """
    from python_steps.publish import cards

    with _conn() as conn:
        try:
            card = cards.rule_card(conn, rule_id)
        except cards.RuleNotFound as exc:
            _fail(str(exc))
    if as_json:
        click.echo(json.dumps(card, indent=2, sort_keys=True, default=str))
    else:
        click.echo(render_card(card))


def _manual(action: str, rule_id: str, reason: str, **kw) -> None:
    from patas.cli.common import settings
    from python_steps.lifecycle import manual
    from python_steps.publish import exports

    exports_dir = settings().exports_dir
    with _conn() as conn:
        try:
            # marts.active_rules and the export files reflect the action when this returns
            result = exports.manual_action(
                conn, action, rule_id, reason=reason, actor=_actor(), exports_dir=exports_dir, **kw
            )
        except (manual.LifecycleError, ValueError) as exc:
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
    from python_steps.lifecycle import manual

    if rule_json and rule_json.startswith("@"):
        rule_json = Path(rule_json[1:]).read_text()
    with _conn() as conn:
        try:
            result = manual.add_manual_rule(
                conn, rule_json, raw_sql=raw_sql, reason=reason, actor=_actor(), description=description
            )
        except (manual.LifecycleError, ValueError) as exc:
            _fail(str(exc))
        conn.commit()
    click.echo(json.dumps(result, sort_keys=True, default=str))


@rules.command("export")
@click.option("--format", "fmt", type=click.Choice(["sql", "rol", "json"]), required=True)
@click.option("--status", default="active", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Default: stdout.")
def export(fmt: str, status: str, out: Path | None) -> None:
    """Export rules for other engines: portable SQL, ROL (regex rule-engine JSON) or typed JSON."""
    from python_steps.publish import exports

    with _conn() as conn:
        text = exports.export_rules(conn, fmt, status=status)
    if out:
        out.write_text(text)
        click.echo(f"wrote {out}", err=True)
    else:
        click.echo(text, nl=not text.endswith("\n"))


@rules.group("review", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True)
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@click.pass_context
def review(ctx: click.Context, as_json: bool, limit: int) -> None:
    """The review queue: REVIEW_ONLY rules wait here for a person (approve or reject them)."""
    if ctx.invoked_subcommand is not None:
        return
    from python_steps.lifecycle import manual

    with _conn() as conn:
        rows = manual.review_queue(conn, limit=limit)
    if as_json:
        click.echo(json.dumps(rows, indent=2, sort_keys=True, default=str))
        return
    if not rows:
        click.echo("no rules waiting for review")
        return
    click.echo(f"{'rule':<20} {'kind':<18} {'spam':>5} {'ham':>4} {'post.':>6} {'low':>6}  description")
    for r in rows:
        click.echo(
            f"{r['rule_id']:<20} {r.get('rule_kind') or '':<18} {_num(r.get('evidence_spam_hits'), 0):>5} "
            f"{_num(r.get('evidence_ham_hits'), 0):>4} {_num(r.get('posterior_mean')):>6} "
            f"{_num(r.get('posterior_lower_bound')):>6}  {r['description']}"
        )
    click.echo(
        "approve: patas rules review approve <id> --reason TEXT; reject: patas rules review reject <id> --reason TEXT"
    )


@review.command("approve")
@click.argument("rule_id")
@click.option("--reason", required=True)
def review_approve(rule_id: str, reason: str) -> None:
    """Approve a rule waiting for review: it becomes active (audited)."""
    _manual("approve", rule_id, reason)


@review.command("reject")
@click.argument("rule_id")
@click.option("--reason", required=True)
def review_reject(rule_id: str, reason: str) -> None:
    """Reject a rule waiting for review: it is deprecated (audited)."""
    _manual("reject", rule_id, reason)
