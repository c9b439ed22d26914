"""Data-quality gates on the newest ingested batch, with great-expectations 1.x (imported lazily).

What goes wrong in a nightly feed is relative to what came before: a batch a tenth of the usual
size, a spam share that doubles, texts suddenly truncated, labels missing, timestamps in the
future, a re-sent or broken export. :func:`profile_batches` keeps one profile per batch
(``patas.batch_profiles``: counts, shares, text-length quantiles); :func:`validate_newest_batch`
builds a great-expectations suite whose bounds come from the median of the earlier batches'
profiles and the thresholds in ``quality_gates.toml``, validates the newest batch's rows and
totals, and stores one row per gate in ``patas.quality_gate_results``. A failed ``critical`` gate
fails the blocking Dagster check (nothing downstream runs: no promotion on that data); a failed
``warning`` gate shows as a warning.
"""

from __future__ import annotations

import hashlib
import json
import statistics
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from python_steps import tables
from python_steps.quality import suite_process

DEFAULT_CONFIG = Path(__file__).with_name("quality_gates.toml")
SAMPLE_LIMIT = 200_000  # rows validated per batch (the first ones by message id: deterministic)
GATES = (
    "volume",
    "spam_share",
    "unlabelled_share",
    "text_length",
    "duplicate_share",
    "quarantine_share",
    "future_timestamps",
    "language_mix",
)
# Gates on the run's evaluation (python_steps.quality.evaluation), checked by the lifecycle step.
EVALUATION_GATES = ("evaluation_window", "active_precision")
SEVERITIES = ("critical", "warning", "off")
_KEYS = {
    "volume": {"severity", "min_ratio", "max_ratio"},
    "spam_share": {"severity", "max_abs_delta"},
    "unlabelled_share": {"severity", "max_abs_delta"},
    "text_length": {"severity", "quantiles", "min_ratio", "max_ratio"},
    "duplicate_share": {"severity", "max_share"},
    "quarantine_share": {"severity", "max_share"},
    "future_timestamps": {"severity", "tolerance_seconds", "max_share"},
    "language_mix": {"severity", "max_distance"},
    "evaluation_window": {"severity", "min_messages", "min_spam", "min_ham", "min_mining_messages"},
    "active_precision": {"severity", "max_drop", "min_hits"},
}
LANGUAGE_SAMPLE = 20_000  # messages per batch whose script is classified (shares need no more)
# The cheap script classifier: a message's script is the one with the most letters in its text
# (no model, no dictionary); "other" when it has no letter of these scripts (digits, emoji, ...).
SCRIPTS = (
    ("latin", "[A-Za-z\u00c0-\u024f]"),
    ("cyrillic", "[\u0400-\u04ff]"),
    ("greek", "[\u0370-\u03ff]"),
    ("arabic", "[\u0600-\u06ff]"),
    ("hebrew", "[\u0590-\u05ff]"),
    ("devanagari", "[\u0900-\u097f]"),
    ("thai", "[\u0e00-\u0e7f]"),
    ("cjk", "[\u3040-\u30ff\u4e00-\u9fff]"),
    ("hangul", "[\uac00-\ud7af]"),
)


class QualityConfigError(ValueError):
    pass


@dataclass(frozen=True)
class GateConfig:
    history_batches: int
    min_batches: int
    min_rows: int
    gates: Mapping[str, Mapping[str, Any]]

    def severity(self, gate: str) -> str:
        return self.gates[gate]["severity"]


def load_config(user_config: Path | None = None) -> GateConfig:
    """The shipped thresholds, overridden key by key by ``user_config`` when it exists."""
    merged: dict[str, Any] = {"history": {}, "gates": {g: {} for g in GATES + EVALUATION_GATES}}
    for path in [DEFAULT_CONFIG] + (
        [Path(user_config)] if user_config and Path(user_config).exists() else []
    ):
        try:
            doc = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise QualityConfigError(f"{path}: not valid TOML ({exc})") from None
        unknown = set(doc) - {"history", "gates"}
        if unknown:
            raise QualityConfigError(f"{path}: unknown sections {sorted(unknown)}")
        bad_history = set(doc.get("history", {})) - {"batches", "min_batches", "min_rows"}
        if bad_history:
            raise QualityConfigError(f"{path}: unknown history keys {sorted(bad_history)}")
        merged["history"].update(doc.get("history", {}))
        for gate, values in doc.get("gates", {}).items():
            if gate not in _KEYS:
                raise QualityConfigError(
                    f"{path}: unknown gate {gate!r}; known: {', '.join(GATES + EVALUATION_GATES)}"
                )
            bad = set(values) - _KEYS[gate]
            if bad:
                raise QualityConfigError(f"{path}: gate {gate} has unknown keys {sorted(bad)}")
            merged["gates"][gate].update(values)
    for gate, values in merged["gates"].items():
        if values.get("severity") not in SEVERITIES:
            raise QualityConfigError(f"gate {gate}: severity must be one of {', '.join(SEVERITIES)}")
        missing = _KEYS[gate] - set(values)
        if missing:
            raise QualityConfigError(f"gate {gate}: missing {sorted(missing)}")
    h = merged["history"]
    try:
        config = GateConfig(int(h["batches"]), int(h["min_batches"]), int(h["min_rows"]), merged["gates"])
    except KeyError as exc:
        raise QualityConfigError(f"history: missing {exc.args[0]!r}") from None
    if config.history_batches < 1 or config.min_batches < 1 or config.min_rows < 0:
        raise QualityConfigError("history: batches and min_batches must be at least 1, min_rows not negative")
    return config


# ---- profiles -------------------------------------------------------------------------------------


def ensure_schema(conn: psycopg.Connection) -> None:
    tables.ensure_all(conn)


def profile_batches(conn: psycopg.Connection, config: GateConfig) -> int:
    """Profile every finished batch that has no profile yet (one aggregate per batch, by batch id)."""
    quantiles = sorted({float(q) for q in config.gates["text_length"]["quantiles"]})
    todo = [
        r[0]
        for r in conn.execute(
            """
            select b.batch_id from raw.ingest_batches as b
            where b.status = 'done'
              and not exists (select 1 from patas.batch_profiles as p where p.batch_id = b.batch_id)
            order by b.batch_id
            """
        ).fetchall()
    ]
    tolerance = float(config.gates["future_timestamps"]["tolerance_seconds"])
    for batch_id in todo:
        stats = conn.execute(
            """
            select
                b.read_count, b.loaded_count, b.duplicate_count, b.quarantined_count,
                count(m.is_spam),
                avg(m.is_spam::int)::float8,
                avg((m.is_spam is null)::int) filter (where m.message_id is not null)::float8,
                percentile_cont(%s::float8[]) within group (order by length(m.text)),
                count(*) filter (where m.event_at > b.started_at + make_interval(secs => %s))
            from raw.ingest_batches as b
            left join raw.messages as m on m.batch_id = b.batch_id
            where b.batch_id = %s
            group by b.batch_id
            """,
            (quantiles, tolerance, batch_id),
        ).fetchone()
        values = stats[7] or []
        length_quantiles = {str(q): v for q, v in zip(quantiles, values, strict=False) if v is not None}
        conn.execute(
            """
            insert into patas.batch_profiles (
                batch_id, read_count, loaded_count, duplicate_count, quarantined_count, labelled_count,
                spam_share, unlabelled_share, text_length_quantiles, future_event_count
            )
            values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
            on conflict (batch_id) do nothing
            """,
            (batch_id, *stats[:7], Jsonb(length_quantiles), stats[8]),
        )
        conn.execute(
            "update patas.batch_profiles set language_shares = %s where batch_id = %s",
            (Jsonb(script_shares(conn, batch_id)), batch_id),
        )
    return len(todo)


def script_shares(conn: psycopg.Connection, batch_id: int) -> dict[str, float]:
    """Share of each dominant writing script among the batch's first LANGUAGE_SAMPLE messages."""
    patterns = ", ".join(f"('{name}', '{pattern}')" for name, pattern in SCRIPTS)
    rows = conn.execute(
        f"""
        with sample as (
            select message_id, text from raw.messages where batch_id = %s order by message_id limit %s
        ),
        classified as (
            select coalesce((
                select s.script
                from (values {patterns}) as s (script, pattern)
                where sample.text ~ s.pattern
                order by length(sample.text) - length(regexp_replace(sample.text, s.pattern, '', 'g')) desc,
                    s.script
                limit 1
            ), 'other') as script
            from sample
        )
        select script, count(*)::float8 / sum(count(*)) over () from classified group by script
        """,
        (batch_id, LANGUAGE_SAMPLE),
    ).fetchall()
    return {script: round(share, 6) for script, share in sorted(rows)}


def mix_distance(shares: Mapping[str, float], reference: Mapping[str, float]) -> float:
    """Total variation distance between two script mixes (0: the same mix, 1: disjoint)."""
    keys = set(shares) | set(reference)
    return 0.5 * sum(abs(shares.get(k, 0.0) - reference.get(k, 0.0)) for k in keys)


def history_mix(history: Sequence[Mapping[str, Any]]) -> dict[str, float] | None:
    """The mean script mix of the earlier batches that have one."""
    mixes = [h["language_shares"] for h in history if h.get("language_shares")]
    if not mixes:
        return None
    keys = sorted({k for m in mixes for k in m})
    return {k: sum(m.get(k, 0.0) for m in mixes) / len(mixes) for k in keys}


def _history(conn: psycopg.Connection, batch_id: int, n: int) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return cur.execute(
            """
            select * from patas.batch_profiles
            where batch_id < %s and loaded_count > 0
            order by batch_id desc limit %s
            """,
            (batch_id, n),
        ).fetchall()


def _median(values: Sequence[float | None]) -> float | None:
    vals = [float(v) for v in values if v is not None]
    return statistics.median(vals) if vals else None


# ---- validation -----------------------------------------------------------------------------------


@dataclass
class GateResult:
    gate: str
    severity: str
    status: str  # passed | failed | skipped
    detail: str
    observed: Any = None
    expected: str | None = None


@dataclass
class BatchValidation:
    batch_id: int | None
    rows: int
    results: list[GateResult] = field(default_factory=list)
    # GE's HTML page (the data-docs validation page) per suite validated: name -> HTML.
    data_docs: dict[str, str] = field(default_factory=dict)
    reused: bool = False  # the stored results of an earlier run's validation of the same inputs

    @property
    def critical_failures(self) -> list[GateResult]:
        return [r for r in self.results if r.status == "failed" and r.severity == "critical"]

    @property
    def warnings(self) -> list[GateResult]:
        return [r for r in self.results if r.status == "failed" and r.severity == "warning"]

    @property
    def success(self) -> bool:
        return not self.critical_failures

    def summary(self) -> str:
        if self.batch_id is None:
            return "no batch has loaded rows yet"
        failed = [f"{r.gate} ({r.severity}): {r.detail}" for r in self.results if r.status == "failed"]
        return (
            f"batch {self.batch_id}: "
            + ("; ".join(failed) if failed else "every gate passed or was skipped")
            + (" (re-used: validated in an earlier run, nothing changed since)" if self.reused else "")
        )


def _fmt(x: Any) -> str:
    return f"{x:.4g}" if isinstance(x, float) else str(x)


def validate_newest_batch(
    conn: psycopg.Connection, config: GateConfig | None = None, *, run_id: str | None = None
) -> BatchValidation:
    """Validate the newest batch that loaded rows against the earlier batches; store the results."""
    config = config or load_config()
    ensure_schema(conn)
    profile_batches(conn, config)
    row = conn.execute("select max(batch_id) from patas.batch_profiles where loaded_count > 0").fetchone()
    batch_id = row[0] if row else None
    if batch_id is None:
        return BatchValidation(None, 0)
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        profile = cur.execute(
            "select * from patas.batch_profiles where batch_id = %s", (batch_id,)
        ).fetchone()
    history = _history(conn, batch_id, config.history_batches)
    state = _input_state(conn, batch_id, profile, history, config)
    reused = _reuse_results(conn, batch_id, state, run_id)
    if reused is not None:
        return BatchValidation(batch_id, profile["loaded_count"], reused, {}, reused=True)
    cur = conn.execute(
        """
        select length(m.text) as text_length,
               m.is_spam::int::float8 as spam,
               (m.is_spam is null)::int as unlabelled,
               extract(epoch from m.event_at - b.started_at)::float8 as seconds_after_ingest
        from raw.messages as m join raw.ingest_batches as b using (batch_id)
        where m.batch_id = %s order by m.message_id limit %s
        """,
        (batch_id, SAMPLE_LIMIT),
    )
    columns = [d.name for d in cur.description]
    records = cur.fetchall()
    results, data_docs = suite_process.call(_suite_with_docs, config, profile, history, columns, records)
    with conn.transaction():
        conn.execute("delete from patas.quality_gate_results where batch_id = %s", (batch_id,))
        with conn.cursor() as c:
            c.executemany(
                """
                insert into patas.quality_gate_results
                    (batch_id, gate, severity, status, observed, expected, detail, run_id)
                values (%s, %s, %s, %s, %s, %s, %s, %s)
                """,
                [
                    (batch_id, r.gate, r.severity, r.status,
                     None if r.observed is None else _fmt(r.observed), r.expected, r.detail, run_id)
                    for r in results
                ],
            )  # fmt: skip
        _record_state(conn, batch_id, state, run_id, skipped=False)
    return BatchValidation(batch_id, profile["loaded_count"], results, data_docs)


# -- re-use: a run with nothing new validates nothing again -------------------------------------
# The step's input state (the batch's rows and profile, the history it is compared with, the
# thresholds, this module's code) and the results it stored are recorded per run in
# patas.run_step_states (step 'quality_gates'; the same table python_steps.mining.reuse keeps for
# drafting). Same state and untouched results: the stored results are the run's results (re-stamped
# with its run id), and great-expectations is neither run nor imported for the batch.
STEP = "quality_gates"
_CODE = (Path(__file__), DEFAULT_CONFIG)


def _input_state(
    conn: psycopg.Connection,
    batch_id: int,
    profile: Mapping[str, Any],
    history: Sequence[Mapping[str, Any]],
    config: GateConfig,
) -> str:
    rows = conn.execute(
        "select count(*), min(message_id), max(message_id) from raw.messages where batch_id = %s", (batch_id,)
    ).fetchone()
    payload = {
        "batch": [batch_id, *rows],
        "profile": profile,
        "history": list(history),
        "config": repr(config),
        "code": [hashlib.md5(p.read_bytes()).hexdigest() for p in _CODE],
    }
    return hashlib.md5(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _results_state(conn: psycopg.Connection, batch_id: int) -> str:
    """The batch gates' stored results (the evaluation gates share the table, keyed by batch too)."""
    return conn.execute(
        """
        select md5(coalesce(string_agg(concat_ws(chr(31), gate, severity, status, observed, expected, detail),
                                       chr(30) order by gate), ''))
        from patas.quality_gate_results where batch_id = %s and gate = any(%s)
        """,
        (batch_id, list(GATES)),
    ).fetchone()[0]


def _record_state(
    conn: psycopg.Connection, batch_id: int, state: str, run_id: str | None, *, skipped: bool
) -> None:
    if run_id is None:
        return
    reason = f"batch {batch_id} " + ("validated in an earlier run, unchanged" if skipped else "validated")
    tables.write_step_state(
        conn, run_id, STEP, state, _results_state(conn, batch_id), skipped=skipped, reason=reason
    )


def _reuse_results(
    conn: psycopg.Connection, batch_id: int, state: str, run_id: str | None
) -> list[GateResult] | None:
    """The stored results of an earlier validation of the same inputs, or None (validate again)."""
    if run_id is None:
        return None
    row = tables.latest_computed_step_state(conn, STEP, other_than_run=run_id)
    if row is None or row[1] != state or row[2] != _results_state(conn, batch_id):
        return None
    with conn.transaction():
        rows = conn.execute(
            """
            update patas.quality_gate_results set run_id = %s where batch_id = %s and gate = any(%s)
            returning gate, severity, status, detail, observed, expected
            """,
            (run_id, batch_id, list(GATES)),
        ).fetchall()
        _record_state(conn, batch_id, state, run_id, skipped=True)
    return [GateResult(*r) for r in sorted(rows)]


def _suite_with_docs(
    config: GateConfig,
    profile: Mapping[str, Any],
    history: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    records: Sequence[tuple],
) -> tuple[list[GateResult], dict[str, str]]:
    """:func:`_run_suite` and its data-docs pages (what the great-expectations helper returns)."""
    data_docs: dict[str, str] = {}
    return _run_suite(config, profile, history, columns, records, data_docs), data_docs


def _run_suite(
    config: GateConfig,
    profile: Mapping[str, Any],
    history: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    records: Sequence[tuple],
    data_docs: dict[str, str] | None = None,
) -> list[GateResult]:
    """Build the great-expectations suites (bounds from history and config), validate, map results."""
    import great_expectations as gx
    import pandas as pd
    from great_expectations.expectations.metadata_types import FailureSeverity

    g = config.gates
    enough_history = len(history) >= config.min_batches
    big_enough = profile["loaded_count"] >= config.min_rows
    results: list[GateResult] = []
    rows: list[tuple[str, Any]] = []  # (gate, expectation) on the batch's rows
    totals: list[tuple[str, Any]] = []  # (gate, expectation) on the batch's one-row totals

    def skip(gate: str, why: str) -> None:
        results.append(GateResult(gate, g[gate]["severity"], "skipped", why))

    def sev(gate: str) -> Any:
        return FailureSeverity.CRITICAL if g[gate]["severity"] == "critical" else FailureSeverity.WARNING

    def wanted(gate: str) -> bool:
        return g[gate]["severity"] != "off"

    no_history = f"{len(history)} earlier batch(es) with rows < history.min_batches {config.min_batches}"
    too_small = f"{profile['loaded_count']} rows < history.min_rows {config.min_rows}"

    if wanted("volume"):
        if not enough_history:
            skip("volume", no_history)
        else:
            median = _median([h["loaded_count"] for h in history])
            totals.append(("volume", gx.expectations.ExpectColumnValuesToBeBetween(
                column="loaded_count", min_value=median * g["volume"]["min_ratio"],
                max_value=median * g["volume"]["max_ratio"], severity=sev("volume"),
                meta={"gate": "volume", "history_median": median})))  # fmt: skip
    for gate, column, key in (
        ("spam_share", "spam", "spam_share"),
        ("unlabelled_share", "unlabelled", "unlabelled_share"),
    ):
        if not wanted(gate):
            continue
        median = _median([h[key] for h in history]) if enough_history else None
        if not enough_history:
            skip(gate, no_history)
        elif not big_enough:
            skip(gate, too_small)
        elif median is None:
            skip(gate, "no history value (earlier batches had no labelled rows)")
        else:
            delta = g[gate]["max_abs_delta"]
            rows.append((gate, gx.expectations.ExpectColumnMeanToBeBetween(
                column=column, min_value=max(0.0, median - delta), max_value=min(1.0, median + delta),
                severity=sev(gate), meta={"gate": gate, "history_median": median})))  # fmt: skip
    if wanted("text_length"):
        qs = sorted({float(q) for q in g["text_length"]["quantiles"]})
        medians = [_median([(h["text_length_quantiles"] or {}).get(str(q)) for h in history]) for q in qs]
        if not enough_history:
            skip("text_length", no_history)
        elif not big_enough:
            skip("text_length", too_small)
        elif any(m is None for m in medians):
            skip("text_length", "no history value for every quantile")
        else:
            ranges = [[m * g["text_length"]["min_ratio"], m * g["text_length"]["max_ratio"]] for m in medians]
            rows.append(("text_length", gx.expectations.ExpectColumnQuantileValuesToBeBetween(
                column="text_length", quantile_ranges={"quantiles": qs, "value_ranges": ranges},
                allow_relative_error="linear", severity=sev("text_length"),
                meta={"gate": "text_length", "history_medians": medians})))  # fmt: skip
    read = profile["read_count"] or 0
    for gate in ("duplicate_share", "quarantine_share"):
        if not wanted(gate):
            continue
        if read < config.min_rows:
            skip(gate, f"{read} lines read < history.min_rows {config.min_rows}")
        else:
            totals.append((gate, gx.expectations.ExpectColumnValuesToBeBetween(
                column=gate, min_value=0, max_value=g[gate]["max_share"], severity=sev(gate),
                meta={"gate": gate})))  # fmt: skip
    mix_distance_value = 0.0
    if wanted("language_mix"):
        reference = history_mix(history) if enough_history else None
        shares = profile.get("language_shares") or {}
        if not enough_history:
            skip("language_mix", no_history)
        elif not big_enough:
            skip("language_mix", too_small)
        elif reference is None or not shares:
            skip("language_mix", "no script mix profiled for this batch or its history")
        else:
            mix_distance_value = mix_distance(shares, reference)
            totals.append(("language_mix", gx.expectations.ExpectColumnValuesToBeBetween(
                column="language_mix", min_value=0, max_value=g["language_mix"]["max_distance"],
                severity=sev("language_mix"), meta={"gate": "language_mix", "shares": shares,
                                                    "history": {k: round(v, 4) for k, v in reference.items()}})))  # fmt: skip
    if wanted("future_timestamps"):
        max_share = float(g["future_timestamps"]["max_share"])
        rows.append(("future_timestamps", gx.expectations.ExpectColumnValuesToBeBetween(
            column="seconds_after_ingest", max_value=float(g["future_timestamps"]["tolerance_seconds"]),
            mostly=1.0 - max_share, severity=sev("future_timestamps"),
            meta={"gate": "future_timestamps"})))  # fmt: skip

    frames = {
        "rows": pd.DataFrame.from_records(list(records), columns=list(columns)),
        "totals": pd.DataFrame.from_records(
            [(profile["loaded_count"], profile["duplicate_count"] / read if read else 0.0,
              profile["quarantined_count"] / read if read else 0.0, mix_distance_value)],
            columns=["loaded_count", "duplicate_share", "quarantine_share", "language_mix"],
        ),
    }  # fmt: skip
    gate_columns = {"volume": "loaded_count"}
    context = gx.get_context(mode="ephemeral")
    source = context.data_sources.add_pandas("patas_batch")
    for name, expectations in (("rows", rows), ("totals", totals)):
        if not expectations:
            continue
        batch = (
            source.add_dataframe_asset(name)
            .add_batch_definition_whole_dataframe("whole")
            .get_batch(batch_parameters={"dataframe": frames[name]})
        )
        suite = gx.ExpectationSuite(name=f"raw_messages_batch_{name}")
        for _, expectation in expectations:
            suite.add_expectation(expectation)
        outcome = batch.validate(suite, result_format="SUMMARY")
        if data_docs is not None:
            data_docs[suite.name] = render_data_docs(outcome)
        for r in outcome.results:
            cfg = r.expectation_config
            gate = cfg.meta["gate"]
            observed = (r.result or {}).get("observed_value")
            if name == "totals":
                observed = frames["totals"][gate_columns.get(gate, gate)].iloc[0].item()
            elif gate == "future_timestamps":
                observed = (r.result or {}).get("unexpected_count", 0)
            results.append(
                GateResult(
                    gate,
                    g[gate]["severity"],
                    "passed" if r.success else "failed",
                    _describe(gate, bool(r.success), observed, cfg.kwargs, cfg.meta),
                    observed,
                    _expected(cfg.kwargs),
                )
            )
    return sorted(results, key=lambda r: GATES.index(r.gate))


def render_data_docs(outcome: Any) -> str:
    """One validation result as great-expectations renders it in its data docs (the validation
    results page: statistics, every expectation with its observed value), as a standalone HTML page
    (styles and scripts from GE's CDNs; the content is all in the page)."""
    import logging

    from great_expectations.render.renderer import ValidationResultsPageRenderer
    from great_expectations.render.view import DefaultJinjaPageView

    # GE's observed-value renderer rejects numpy floats and logs a traceback, then falls back to a
    # plain rendering of the value: keep that out of the run's log.
    loggers = [logging.getLogger(n) for n in ("great_expectations", "great_expectations.expectations")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        return DefaultJinjaPageView().render(ValidationResultsPageRenderer().render(outcome))
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def write_data_docs(pages: Mapping[str, str], reports_dir: Path, run_id: str) -> list[str]:
    """Write GE's validation pages under ``<reports_dir>/data_docs/run_<run_id>/``; the run report links
    them (python_steps.publish.report.write_report). Returns the paths written."""
    out = Path(reports_dir) / "data_docs" / f"run_{run_id}"
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, html in sorted(pages.items()):
        path = out / f"{name}.html"
        path.write_text(html, encoding="utf-8")
        written.append(str(path))
    return written


def _expected(kwargs: Mapping[str, Any]) -> str:
    if "quantile_ranges" in kwargs:
        qr = kwargs["quantile_ranges"]
        return ", ".join(
            f"q{q:g} in [{lo:.4g}, {hi:.4g}]"
            for q, (lo, hi) in zip(qr["quantiles"], qr["value_ranges"], strict=True)
        )
    lo, hi = kwargs.get("min_value"), kwargs.get("max_value")
    mostly = kwargs.get("mostly")
    out = f"[{'-inf' if lo is None else _fmt(float(lo))}, {'inf' if hi is None else _fmt(float(hi))}]"
    return out + (f" for {mostly:.0%} of rows" if mostly not in (None, 1.0) else "")


def _describe(gate: str, ok: bool, observed: Any, kwargs: Mapping[str, Any], meta: Mapping[str, Any]) -> str:
    verdict = "within" if ok else "outside"
    if gate == "volume":
        return f"{_fmt(observed)} rows loaded, {verdict} {_expected(kwargs)} (history median {_fmt(meta['history_median'])})"
    if gate in ("spam_share", "unlabelled_share"):
        what = "spam share of labelled rows" if gate == "spam_share" else "unlabelled share"
        return f"{what} {_fmt(observed)}, {verdict} {_expected(kwargs)} (history median {_fmt(meta['history_median'])})"
    if gate == "text_length":
        got = observed.get("values") if isinstance(observed, Mapping) else observed
        return f"text length quantiles {got}, {'all within' if ok else 'not within'} {_expected(kwargs)}"
    if gate == "future_timestamps":
        return f"{observed} event time(s) more than {_fmt(kwargs['max_value'])} s after ingestion" + (
            "" if ok else " (clock or unit error in the feed)"
        )
    if gate == "language_mix":
        top = lambda mix: ", ".join(f"{k} {v:.0%}" for k, v in sorted(mix.items(), key=lambda kv: -kv[1])[:3])  # noqa: E731
        return (
            f"script mix distance {_fmt(observed)} from the earlier batches, {verdict} {_expected(kwargs)}"
            f" (this batch: {top(meta['shares'])}; history: {top(meta['history'])})"
        )
    return f"{gate.replace('_', ' ')} {_fmt(observed)}, {verdict} {_expected(kwargs)}"
