"""`patas patterns ...`: the pattern library (stage-2 clusters and promoted rules' evidence)."""

from __future__ import annotations

import json

import click

from patas.cli.common import fail


def _conn():
    from patas.cli.common import warehouse_url
    from python_steps.warehouse import connect

    return connect(warehouse_url())


def _num(value: object) -> str:
    return "" if value is None else f"{value:.3f}"


def _phrases(p: dict, n: int = 3) -> str:
    summary = p.get("summary") or {}
    if p["kind"] == "rule":
        return summary.get("description", "")
    return ", ".join(x["phrase"] for x in summary.get("top_phrases", [])[:n])


@click.group()
def patterns() -> None:
    """The pattern library: list, show, and match a text against known patterns by meaning."""


@patterns.command("list")
@click.option("--kind", type=click.Choice(["cluster", "rule"]), default=None)
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def list_patterns(kind: str | None, limit: int, as_json: bool) -> None:
    """One line per known pattern: id, version, nights seen, size, spam share, cohesion, rules."""
    from python_steps.mining import library

    with _conn() as conn:
        rows = library.list_patterns(conn, kind=kind, limit=limit)
    if as_json:
        click.echo(json.dumps(rows, indent=2, sort_keys=True, default=str))
        return
    if not rows:
        click.echo("no patterns (run `patas run` first?)")
        return
    click.echo(
        f"{'pattern':<26} {'v':>3} {'runs':>4} {'msgs':>5} {'spam':>6} {'cohes':>6} {'rules':>5}  about"
    )
    for p in rows:
        click.echo(
            f"{p['pattern_id']:<26} {p['version']:>3} {p['runs_active']:>4} {p['message_count']:>5} "
            f"{_num(p['spam_share']):>6} {_num(p['cohesion']):>6} {len(p['rules']):>5}  {_phrases(p)}"
        )


@patterns.command("show")
@click.argument("pattern_id")
@click.option("--json", "as_json", is_flag=True)
def show_pattern(pattern_id: str, as_json: bool) -> None:
    """One pattern (an id or a unique prefix): figures, versions per run, examples, rules."""
    from python_steps.mining import library

    with _conn() as conn:
        try:
            p = library.show_pattern(conn, pattern_id)
        except library.PatternNotFound as exc:
            fail(str(exc))
    if as_json:
        click.echo(json.dumps(p, indent=2, sort_keys=True, default=str))
        return
    click.echo(f"{p['pattern_id']}  {p['kind']}  v{p['version']}, seen in {p['runs_active']} run(s)")
    click.echo(f"embeddings: {p['provider']} / {p['model']}")
    click.echo(
        f"messages {p['message_count']}, spam share {_num(p['spam_share'])}, cohesion {_num(p['cohesion'])}, "
        f"nearest ham distance {_num(p['nearest_ham_distance'])}"
    )
    summary = p.get("summary") or {}
    if summary.get("top_phrases"):
        click.echo("phrases: " + ", ".join(x["phrase"] for x in summary["top_phrases"]))
    if summary.get("top_entities"):
        click.echo("entities: " + ", ".join(f"{e['kind']} {e['value']}" for e in summary["top_entities"]))
    for ex in summary.get("examples", []):
        click.echo(f"  e.g. {ex}")
    click.echo(
        "versions: " + ", ".join(f"v{v['version']} ({v['message_count']} msgs)" for v in p["versions"])
    )
    s = p.get("success") or {}
    if s.get("runs_measured"):
        click.echo(
            f"success: {s['hits']} hits (spam {s['spam_hits']}, ham {s['ham_hits']}), precision"
            f" {_num(s['precision']) or '-'}, active {s['nights_active']} of {s['runs_measured']} night(s),"
            f" rules derived {s['rules_derived']} ({s['rules_active']} active), re-used in {s['runs_reused']} run(s)"
        )
    else:
        click.echo("success: not measured yet (no run has evaluated its rules)")
    click.echo("rules:" if p["rules"] else "rules: none drafted")
    for r in p["rules"]:
        click.echo(f"  {r['rule_id']}  {r['status'] or '-'}  prec {_num(r['precision'])}  {r['description']}")


@patterns.command("match")
@click.argument("text")
@click.option("-k", "--top", "k", type=click.IntRange(1, 100), default=5, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def match_text(text: str, k: int, as_json: bool) -> None:
    """The known patterns nearest to TEXT by meaning (the configured embeddings), with their rules."""
    from python_steps.mining import library
    from python_steps.mining.embeddings import EmbeddingConfig
    from python_steps.settings import load_settings

    if not text.strip():
        fail("TEXT is empty")
    with _conn() as conn:
        out = library.match(conn, text, EmbeddingConfig.from_settings(load_settings()), k=k)
    if as_json:
        click.echo(json.dumps(out, indent=2, sort_keys=True, default=str))
        return
    for w in out["warnings"]:
        click.secho(f"warning: {w}", fg="yellow", err=True)
    if not out["matches"]:
        click.echo(f"no known patterns in the {out['provider']} space (run `patas run` first?)")
        return
    for m in out["matches"]:
        rules = ", ".join(f"{r['rule_id']} ({r['status'] or '-'})" for r in m["rules"]) or "no rules"
        click.echo(
            f"{m['similarity']:.3f}  {m['pattern_id']:<26} {m['message_count']:>5} msgs  {_phrases(m)}  -> {rules}"
        )
