"""The ``patas`` command line.

Heavy modules (Dagster, dbt, scikit-learn) are imported inside the commands that need them, so
``patas ingest`` or ``patas db status`` start fast.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import click

from patas.cli.common import PatasGroup, fail, settings, warehouse_url
from python_steps.settings import PROJECT_ROOT, Settings, dbt_env, masked_url

_settings = settings
_fail = fail


def _url(s: Settings) -> str:
    return warehouse_url(s)


@click.group(cls=PatasGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="patas")
def main() -> None:
    """PATAS: turn labelled message logs into safe, transparent blocking rules.

    The warehouse is PATAS_DATABASE_URL, or an embedded Postgres that PATAS starts in
    .patas/pgdata when that variable is unset.
    """


# --------------------------------------------------------------------------------------------- db
@main.group()
def db() -> None:
    """Manage the embedded Postgres (ignored when PATAS_DATABASE_URL is set)."""


@db.command("start")
def db_start() -> None:
    """Start the embedded Postgres (initialising it on first use) and print its URL."""
    s = _settings()
    if s.database_url:
        click.echo(f"PATAS_DATABASE_URL is set; using {masked_url(s.database_url)} (nothing to start)")
        return
    from patas.embedded import embedded_server

    click.echo(embedded_server(s).start())


@db.command("stop")
def db_stop() -> None:
    """Stop the embedded Postgres."""
    from patas.embedded import embedded_server

    stopped = embedded_server(_settings()).stop()
    click.echo("stopped" if stopped else "not running")


@db.command("status")
def db_status() -> None:
    """Say whether the warehouse is reachable, and where."""
    s = _settings()
    if s.database_url:
        import psycopg

        try:
            with psycopg.connect(s.database_url, connect_timeout=5) as c:
                c.execute("select 1")
            click.echo(f"external warehouse reachable: {masked_url(s.database_url)}")
        except psycopg.OperationalError as exc:
            _fail(f"external warehouse unreachable: {exc}", 1)
        return
    from patas.embedded import embedded_server

    srv = embedded_server(s)
    if srv.running():
        click.echo(f"embedded Postgres running: {srv.url()} (data in {srv.pgdata})")
    else:
        click.echo(f"embedded Postgres stopped (data in {srv.pgdata}; initialised: {srv.initialized})")
        sys.exit(1)


@db.command("url")
def db_url() -> None:
    """Print the warehouse URL (starting the embedded Postgres if needed)."""
    click.echo(_url(_settings()))


# ------------------------------------------------------------------------------------ generate
@main.command()
@click.option(
    "--rows", type=click.IntRange(min=0), default=None, help="Messages (default 20,000; 1,500 with --small)."
)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option(
    "--days", type=click.IntRange(min=1), default=None, help="Days spanned (default 30; 14 with --small)."
)
@click.option("--start", default="2026-01-01", show_default=True, help="First day (UTC) of the corpus.")
@click.option(
    "--scenario",
    default="default",
    show_default=True,
    help="'default' or 'drift' (see python_steps.bench.generate).",
)
@click.option("--small", is_flag=True, help="A team's first labelled export: 1,500 messages over 14 days.")
@click.option(
    "--no-small-campaigns", is_flag=True, help="Leave out the small campaigns of a few dozen messages."
)
@click.option(
    "--paraphrase",
    is_flag=True,
    help="Add campaigns that paraphrase (same offer, varied wording, no link or number): ~15% of the spam.",
)
@click.option(
    "--unspaced",
    is_flag=True,
    help="Add Thai spam and ham (text without spaces between words): ~15% of the spam and of the ham.",
)
def generate(
    rows: int | None, seed: int, out: Path, days: int | None, start: str, scenario: str, small: bool,
    no_small_campaigns: bool, paraphrase: bool, unspaced: bool,
) -> None:  # fmt: skip
    """Write a synthetic, labelled message corpus (JSONL) for demos and benchmarks."""
    from python_steps.bench.generate import generate_corpus

    rows = rows if rows is not None else (1_500 if small else 20_000)
    days = days if days is not None else (14 if small else 30)
    t0 = time.perf_counter()
    try:
        generate_corpus(
            rows,
            seed,
            out,
            start=start,
            days=days,
            scenario=scenario,
            small_campaigns=not no_small_campaigns,
            paraphrase=paraphrase,
            unspaced=unspaced,
        )
    except ValueError as exc:
        fail(str(exc))
    click.echo(f"wrote {rows:,} messages to {out} in {time.perf_counter() - t0:.1f}s")


# -------------------------------------------------------------------------------------- ingest
def _parse_map(value: str | None) -> dict[str, str] | None:
    if not value:
        return None
    mapping = {}
    for part in value.split(","):
        if "=" not in part:
            raise click.BadParameter(f"expected field=column pairs, got {part!r}", param_hint="--map")
        field, column = part.split("=", 1)
        mapping[field.strip()] = column.strip()
    return mapping


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--format", "fmt", type=click.Choice(["jsonl", "csv"]), default=None, help="Default: from the file name."
)
@click.option("--map", "mapping", default=None, help="CSV column mapping, e.g. text=body,is_spam=label.")
@click.option("--max-text-bytes", type=int, default=None, help="Texts above this size are quarantined.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per file.")
def ingest(
    paths: tuple[Path, ...], fmt: str | None, mapping: str | None, max_text_bytes: int | None, as_json: bool
) -> None:
    """Load message files (JSONL or CSV, optionally gzipped) into raw.messages.

    Every line ends as loaded, duplicate or quarantined (with its line number and reason);
    re-ingesting a file loads nothing new.
    """
    import psycopg

    from python_steps.ingest.load import ingest_file

    s = _settings()
    column_map = _parse_map(mapping)
    url = _url(s)
    for path in paths:
        if not path.is_file():
            _fail(f"no such file: {path}")
        try:
            report = ingest_file(
                url,
                path,
                fmt=fmt,
                column_map=column_map,
                max_text_bytes=max_text_bytes or s.max_text_bytes,
                progress=sys.stderr.isatty() and not as_json,
            )
        except (OSError, ValueError, EOFError, psycopg.Error) as exc:
            _fail(f"{path}: {' '.join(str(exc).split()) or type(exc).__name__}")
        if as_json:
            click.echo(json.dumps(report.as_dict()))
        else:
            d = report.as_dict()
            click.echo(
                f"{path}: batch {d['batch_id']}: read {d['read']:,} = loaded {d['loaded']:,}"
                f" + duplicate {d['duplicate']:,} + quarantined {d['quarantined']:,}"
            )


# ----------------------------------------------------------------------------------------- run
def _run_options(f):
    """The `patas run` flags: each sets one field of the run specification (python_steps.runspec)."""
    options = [
        click.option("--split", type=click.Choice(["auto", "time", "hash"]), default=None,
                     help="auto (default): a time split when messages have timestamps, else a hash split."),
        click.option("--mining-start", default=None, help="ISO timestamp; with the three others, explicit windows."),
        click.option("--mining-end", default=None),
        click.option("--evaluation-start", default=None),
        click.option("--evaluation-end", default=None),
        click.option("--evaluation-share", type=int, default=None, help="Hash split: % held out (default 30)."),
        click.option("--profile", default=None, help="Safety profile (default: PATAS_PROFILE or conservative)."),
        click.option("--crossfit-folds", type=int, default=None,
                     help="Folds of the mining window every rule is also measured out of (default 5; 0: evaluation window only)."),
        click.option("--max-rules", type=int, default=None, help="Drafting: at most this many rules (default 1000)."),
        click.option("--stage2-sample", "stage2_sample_size", type=int, default=None,
                     help="Stage 2: messages clustered at most (default 4000)."),
        click.option("--stage2-slice", default=None,
                     help="Stage 2: the suspicious slice, narrow (1%), default (3%), wide (5%), explore (15%) or a percent."),
        click.option("--no-two-stage", "no_two_stage", is_flag=True, help="Stage 1 only (simple mode): no stage 2."),
        click.option("--no-llm", "no_llm", is_flag=True, help="Never call the LLM, even when PATAS_LLM_ENABLED is set."),
        click.option("--llm-privacy", "llm_privacy", type=click.Choice(["standard", "strict"]), default=None,
                     help="What the LLM sees: standard (redacted examples, default) or strict (aggregates only)."),
    ]  # fmt: skip
    for option in reversed(options):
        f = option(f)
    return f


def _spec_from_flags(
    no_llm: bool = False, no_two_stage: bool = False, ingest_paths: tuple[str, ...] = (), **flags
):
    from python_steps.runspec import RunSpec

    values = {k: v for k, v in flags.items() if v is not None}
    if no_llm:
        values["use_llm"] = False
    if no_two_stage:
        values["two_stage"] = False
    return RunSpec.from_mapping({**values, "ingest_paths": tuple(ingest_paths)})


def _progress_printer():
    """One line per finished stage on stderr (and, on a terminal, which stage is running).

    The stream is taken now: during the run, sys.stdout and sys.stderr point at the run's log file."""
    stream = sys.stderr
    tty = stream.isatty()

    def show(event) -> None:
        from patas.runner import CHECKS

        if event.stage == CHECKS and event.status != "failed":
            return
        if event.status == "started":
            if tty:
                click.echo(f"  {event.stage} ...", file=stream)
            return
        mark = "done" if event.status == "done" else "FAILED"
        click.echo(f"  {event.stage:<20} {mark} in {event.seconds:.1f} s", file=stream)

    return show


def _run(s: Settings, url: str, spec, *, quiet: bool, skip_when_unchanged: bool = False) -> dict:
    from python_steps.text.common_words import LanguageError, check_languages

    try:
        check_languages(s.languages)
    except LanguageError as exc:
        fail(str(exc))
    if skip_when_unchanged:
        from patas.nothing_new import nothing_new

        summary = nothing_new(s, url, spec)
        if summary is not None:
            return summary
    from patas.runner import run_pipeline

    summary = run_pipeline(s, url, spec, progress=None if quiet else _progress_printer())
    return summary


@main.command()
@_run_options
@click.option("--force", is_flag=True,
              help="Run the graph even when nothing changed since the latest run (its steps still re-use what is unchanged).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the run summary as JSON.")
def run(as_json: bool, force: bool, **flags) -> None:
    """Materialize the whole asset graph in-process (stage 1, drafting, shadow evaluation, lifecycle, exports).

    When nothing changed since the latest run (no new messages or feedback, no manual action, the
    same settings, code and flags), no step runs: the latest run's results stand and its summary
    is printed, marked "nothing new"."""
    spec = _spec_from_flags(**flags)
    s = _settings()
    summary = _run(s, _url(s), spec, quiet=as_json, skip_when_unchanged=not force)
    _print_summary(summary, as_json)
    if not summary.get("success"):
        sys.exit(1)


def _print_summary(summary: dict, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(summary, indent=2, sort_keys=True, default=str))
        return
    from python_steps.publish.report import render_summary

    click.echo(render_summary(summary))


@main.command()
@click.option("--rows", type=click.IntRange(min=100), default=20_000, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--profile", default=None)
@click.option("--json", "as_json", is_flag=True)
def demo(rows: int, seed: int, profile: str | None, as_json: bool) -> None:
    """Generate a corpus, ingest it, run everything and print a summary."""
    from python_steps.bench.generate import generate_corpus
    from python_steps.ingest.load import ingest_file
    from python_steps.runspec import RunSpec

    spec = RunSpec(profile=profile)
    s = _settings()
    t0 = time.perf_counter()
    url = _url(s)
    click.echo(f"[1/4] warehouse ready ({'PATAS_DATABASE_URL' if s.database_url else 'embedded Postgres'}) "
               f"in {time.perf_counter() - t0:.1f} s", err=True)  # fmt: skip
    corpus = s.home / "demo" / f"corpus_{rows}_{seed}.jsonl"
    corpus.parent.mkdir(parents=True, exist_ok=True)
    t1 = time.perf_counter()
    if not corpus.exists():
        generate_corpus(rows, seed, corpus)
    click.echo(
        f"[2/4] corpus: {corpus} ({rows:,} messages, seed {seed}) in {time.perf_counter() - t1:.1f} s",
        err=True,
    )
    t1 = time.perf_counter()
    report = ingest_file(url, corpus, max_text_bytes=s.max_text_bytes).as_dict()
    click.echo(
        f"[3/4] ingest: read {report['read']:,} = loaded {report['loaded']:,} + duplicate {report['duplicate']:,}"
        f" + quarantined {report['quarantined']:,} in {time.perf_counter() - t1:.1f} s",
        err=True,
    )
    click.echo(
        "[4/4] the asset graph: stage 1 -> stage 2 -> drafting -> shadow evaluation -> promotion -> exports",
        err=True,
    )
    summary = _run(s, url, spec, quiet=as_json)
    summary["demo_seconds"] = round(time.perf_counter() - t0, 1)
    _print_summary(summary, as_json)
    if not as_json:
        click.echo(
            "\nNext:\n"
            "  patas rules list --status active        the active rules, one line each\n"
            "  patas rules show <rule id>              one rule's card: evidence, examples, audit\n"
            "  patas rules export --format rol         the active rules for a regex rule engine\n"
            "  patas ui                                Dagster UI: asset graph, checks, runs\n"
            "  patas docs                              dbt docs: model lineage and column docs"
        )
    if not summary.get("success"):
        sys.exit(1)


# -------------------------------------------------------------------------------------- ui/docs
def _tool_env(s: Settings) -> dict[str, str]:
    url = _url(s)
    env = dbt_env(url)
    env["PATAS_DATABASE_URL"] = url  # Dagster's warehouse resource reads it; the UI never starts a server
    env.setdefault("DAGSTER_HOME", str(_dagster_home(s)))
    return env


def _dagster_home(s: Settings) -> Path:
    from patas.runner import ensure_dagster_yaml

    home = Path(os.environ.get("DAGSTER_HOME") or s.dagster_home)
    ensure_dagster_yaml(home)
    return home


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def _ui_hints(s: Settings, url: str) -> str:
    """What is off when the UI starts, and how to switch it on (both are stopped by default)."""
    return (
        "The nightly schedule and the inbox sensor start switched off. To switch them on:\n"
        f"  schedule  nightly_patas_run (02:30 UTC):  {url}/automation -> nightly_patas_run -> toggle on\n"
        f"  sensor    inbox_sensor (one run per new file): {url}/automation -> inbox_sensor -> toggle on\n"
        f"  inbox     drop .jsonl / .csv (optionally .gz) files into {s.inbox}\n"
        "  or, from a shell with the same DAGSTER_HOME and PATAS_HOME:\n"
        "    dagster schedule start nightly_patas_run -m patas_dagster.definitions\n"
        "    dagster sensor start inbox_sensor -m patas_dagster.definitions\n"
        "  They run while `patas ui` (its daemon) runs; a started one stays on across restarts."
    )


@main.command()
@click.option("--port", type=int, default=3000, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
def ui(port: int, host: str) -> None:
    """Start the Dagster UI (webserver and daemon, so the inbox sensor runs) on the PATAS graph."""
    s = _settings()
    env = _tool_env(s)
    _prepare_manifest(env)
    cmd = [_bin("dagster"), "dev", "-m", "patas_dagster.definitions", "-h", host, "-p", str(port)]
    click.echo(f"Dagster UI on http://{host}:{port} (Ctrl-C to stop)", err=True)
    s.inbox.mkdir(parents=True, exist_ok=True)
    click.echo(_ui_hints(s, f"http://{host}:{port}"), err=True)
    # `dagster dev` takes this process's place: a SIGTERM to `patas ui` (a service manager, `kill`)
    # reaches Dagster, which stops its webserver and daemon, instead of leaving them running.
    _exec_server(cmd, env)


def _exec_server(cmd: list[str], env: dict[str, str]) -> None:
    """Replace this process with a server (``patas ui``, ``patas docs``). SIGINT and SIGTERM go back
    to their defaults first: an ignored signal stays ignored across exec, and a shell script that
    starts ``patas ui &`` (or ``nohup``) hands it SIGINT ignored; `dagster dev` answers SIGTERM with
    its SIGINT handler, so it would then ignore SIGTERM too and never stop its servers."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)
    sys.stdout.flush()
    sys.stderr.flush()
    os.chdir(PROJECT_ROOT)
    os.execve(cmd[0], cmd, env)


@main.command()
@click.option("--port", type=int, default=8080, show_default=True)
@click.option("--no-serve", is_flag=True, help="Only generate the docs site into target/.")
def docs(port: int, no_serve: bool) -> None:
    """Generate and serve dbt docs (model lineage and column docs)."""
    s = _settings()
    env = _tool_env(s)
    code = subprocess.call([_bin("dbt"), "docs", "generate", "--quiet"], env=env, cwd=PROJECT_ROOT)
    if code or no_serve:
        sys.exit(code)
    # As `patas ui`: the server takes this process's place, so a SIGTERM to `patas docs` stops it.
    _exec_server([_bin("dbt"), "docs", "serve", "--port", str(port)], env)


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def dbt(args: tuple[str, ...]) -> None:
    """Run dbt against the PATAS warehouse, e.g. `patas dbt -- test --select marts`."""
    env = _tool_env(_settings())
    sys.exit(subprocess.call([_bin("dbt"), *args], env=env, cwd=PROJECT_ROOT))


def _prepare_manifest(env: dict[str, str]) -> None:
    from patas.manifest import ensure_manifest

    ensure_manifest(env)


def _attach_subcommands() -> None:
    from patas.cli.bench import bench
    from patas.cli.normalize import normalize
    from patas.cli.ops import feedback, retention
    from patas.cli.patterns import patterns
    from patas.cli.rules import rules

    main.add_command(rules)
    main.add_command(bench)
    main.add_command(normalize)
    main.add_command(patterns)
    main.add_command(feedback)
    main.add_command(retention)
    # The HTTP service: serve, apikey, match (patas/service/cli.py).
    from patas.service.cli import commands as service_commands

    for command in service_commands:
        main.add_command(command)


_attach_subcommands()


if __name__ == "__main__":  # pragma: no cover
    main()
