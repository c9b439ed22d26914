"""What every ``patas`` command shares: the warehouse URL, one-line errors, and the group that
turns any failure into one line on stderr (the traceback goes to ``$PATAS_HOME/logs/cli.log``)."""

from __future__ import annotations

import gzip
import sys
import traceback
import zlib
from datetime import UTC, datetime

import click
import psycopg

from python_steps.runspec import RunSpecError
from python_steps.settings import Settings, load_settings
from python_steps.tables import SchemaVersionError
from python_steps.warehouse import WarehouseError

# Failures a user can act on: one line, exit 2.
USER_ERRORS = (
    RunSpecError,
    WarehouseError,
    SchemaVersionError,
    psycopg.OperationalError,
    FileNotFoundError,
    PermissionError,
    IsADirectoryError,
    gzip.BadGzipFile,
    EOFError,
    zlib.error,
    UnicodeDecodeError,
)


def settings() -> Settings:
    return load_settings()


def warehouse_url(s: Settings | None = None) -> str:
    """PATAS_DATABASE_URL, or the embedded Postgres (started when needed)."""
    from patas.embedded import database_url

    return database_url(s or settings())


def fail(message: str, code: int = 2) -> None:
    click.secho(f"error: {message}", fg="red", err=True)
    sys.exit(code)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, psycopg.OperationalError):
        text = "cannot reach the warehouse: " + text
    return text[:400]


def _log_traceback(exc: BaseException) -> str | None:
    try:
        logs = settings().logs_dir
        logs.mkdir(parents=True, exist_ok=True)
        path = logs / "cli.log"
        with path.open("a", encoding="utf-8") as f:
            f.write(f"--- {datetime.now(UTC).isoformat()} {' '.join(sys.argv)}\n")
            f.write("".join(traceback.format_exception(exc)))
        return str(path)
    except OSError:
        return None


class PatasGroup(click.Group):
    """A click group whose commands never show a traceback: known failures are one line and exit 2,
    anything else one line and exit 1 (the traceback is logged)."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.exceptions.Abort, SystemExit):
            raise
        except USER_ERRORS as exc:
            fail(_one_line(exc), 2)
        except KeyboardInterrupt:
            fail("interrupted", 130)
        except Exception as exc:  # the last line of defence: never a traceback on the terminal
            where = _log_traceback(exc)
            fail(
                f"internal error: {type(exc).__name__}: {_one_line(exc)}"
                + (f" (traceback in {where})" if where else ""),
                1,
            )
