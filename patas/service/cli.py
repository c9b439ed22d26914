"""`patas serve`, `patas apikey ...` and `patas match ...` (attached to the main CLI as ``commands``)."""

from __future__ import annotations

import getpass
import ipaddress
import json
import sys
from pathlib import Path

import click


def _settings_and_url():
    from patas.cli.common import settings, warehouse_url

    s = settings()
    return s, warehouse_url(s)


def _fail(message: str, code: int = 2) -> None:
    click.secho(f"error: {message}", fg="red", err=True)
    sys.exit(code)


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", type=int, default=8000, show_default=True)
@click.option(
    "--max-body-mb", type=float, default=32, show_default=True, help="Larger request bodies get 413."
)
@click.option(
    "--match-reload-seconds",
    type=float,
    default=1.0,
    show_default=True,
    help="How often /rules/match checks whether the active rule set changed.",
)
@click.option(
    "--log-level", type=click.Choice(["critical", "error", "warning", "info", "debug"]), default="info"
)
def serve(host: str, port: int, max_body_mb: float, match_reload_seconds: float, log_level: str) -> None:
    """Start the HTTP API (FastAPI + uvicorn): /api/v1/..., OpenAPI docs at /docs.

    Every endpoint but /api/v1/health needs an X-API-Key (patas apikey create NAME --role ROLE).
    """
    import logging

    import uvicorn

    from patas.service.app import create_app

    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    service_log = logging.getLogger("patas.service")
    service_log.addHandler(handler)
    service_log.setLevel(log_level.upper())

    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        click.echo(
            f"note: listening on {host}: keys travel in clear text over plain HTTP; put TLS in front.",
            err=True,
        )
    settings, url = _settings_and_url()
    app = create_app(
        settings, url, max_body_bytes=int(max_body_mb * (1 << 20)), match_check_interval=match_reload_seconds
    )
    click.echo(f"PATAS API on http://{host}:{port}/api/v1 (docs: http://{host}:{port}/docs)", err=True)
    uvicorn.run(app, host=host, port=port, log_level=log_level, server_header=False)


@click.group()
def apikey() -> None:
    """Create, list and revoke API keys (stored hashed in patas.api_keys)."""


@apikey.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice(["reader", "operator", "admin"]), required=True)
@click.option("--json", "as_json", is_flag=True, help="Print the key (with its token) as JSON.")
def apikey_create(name: str, role: str, as_json: bool) -> None:
    """Create a key; its token is printed once, on stdout (it is stored only as a hash)."""
    import psycopg

    from patas.service import auth

    _, url = _settings_and_url()
    with psycopg.connect(url, autocommit=True) as conn:
        try:
            key = auth.create_key(conn, name, role, created_by=_actor())
        except auth.ApiKeyError as exc:
            _fail(str(exc))
    if as_json:
        click.echo(json.dumps(key))
        return
    click.echo(f"created key {key['name']!r} ({key['role']}); its token, shown only now:", err=True)
    click.echo(key["token"])


@apikey.command("list")
@click.option("--all", "include_revoked", is_flag=True, help="Include revoked keys.")
@click.option("--json", "as_json", is_flag=True)
def apikey_list(include_revoked: bool, as_json: bool) -> None:
    """The keys: name, role, token prefix, created, last used (never the tokens)."""
    import psycopg

    from patas.service import auth

    _, url = _settings_and_url()
    with psycopg.connect(url, autocommit=True) as conn:
        keys = auth.list_keys(conn, include_revoked=include_revoked)
    if as_json:
        click.echo(json.dumps(keys, indent=2))
        return
    if not keys:
        click.echo("no keys")
        return
    for k in keys:
        revoked = f"  revoked {k['revoked_at']}" if k["revoked_at"] else ""
        click.echo(
            f"{k['name']:<24} {k['role']:<9} {k['token_prefix']}...  created {k['created_at']}"
            f"  last used {k['last_used_at'] or 'never'}{revoked}"
        )


@apikey.command("revoke")
@click.argument("name")
def apikey_revoke(name: str) -> None:
    """Revoke the active key NAME (or key id); requests with it get 401 from now on."""
    import psycopg

    from patas.service import auth

    _, url = _settings_and_url()
    with psycopg.connect(url, autocommit=True) as conn:
        try:
            key = auth.revoke_key(conn, name)
        except auth.ApiKeyError as exc:
            _fail(str(exc))
    click.echo(f"revoked key {key['name']!r} ({key['role']})")


@click.command()
@click.argument("text", required=False)
@click.option(
    "--file",
    "path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="One raw text per line; .jsonl: objects with text (and optionally id, meta).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per message.")
def match(text: str | None, path: Path | None, as_json: bool) -> None:
    """Apply the active rules to raw text, as POST /api/v1/rules/match does (the one normalizer and
    the Python evaluator). Exit status 0 when some message matched, 1 when none did."""
    import psycopg

    from patas.service import matching

    if (text is None) == (path is None):
        _fail("give a TEXT or --file")
    items: list[tuple[str | None, str, dict | None]] = []
    if text is not None:
        items.append((None, text, None))
    else:
        assert path is not None
        with open(path, encoding="utf-8") as fh:
            for n, line in enumerate(fh, start=1):
                line = line.rstrip("\n")
                if path.suffix in (".jsonl", ".ndjson"):
                    if not line.strip():
                        continue
                    try:
                        obj = json.loads(line)
                        items.append((obj.get("id"), obj["text"], obj.get("meta")))
                    except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
                        _fail(f"{path}:{n}: not a JSON object with a text field")
                else:
                    items.append((None, line, None))
    _, url = _settings_and_url()
    with psycopg.connect(url, autocommit=True) as conn:
        ruleset = matching.load_ruleset(conn)
    matched = matching.match_rows(ruleset, (matching.message_row(t, m) for _, t, m in items))
    if ruleset.skipped:
        click.echo(f"note: {len(ruleset.skipped)} active raw-SQL rule(s) cannot be applied here", err=True)
    any_hit = False
    for i, ((ext_id, _, _), hits) in enumerate(zip(items, matched, strict=True)):
        any_hit = any_hit or bool(hits)
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "index": i,
                        "id": ext_id,
                        "matched": [
                            {"rule_id": r.rule_id, "tier": r.tier, "description": r.description} for r in hits
                        ],
                    },
                    ensure_ascii=False,
                )
            )
        else:
            label = ext_id if ext_id is not None else (f"#{i + 1}" if len(items) > 1 else "text")
            if not hits:
                click.echo(f"{label}: no active rule matches")
            for r in hits:
                click.echo(f"{label}: {r.rule_id} [{r.tier}] {r.description}")
    sys.exit(0 if any_hit else 1)


commands = [serve, apikey, match]
