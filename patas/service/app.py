"""The PATAS HTTP API: ``create_app(...)`` builds the FastAPI application ``patas serve`` runs.

Endpoints under ``/api/v1`` (OpenAPI at ``/docs``), plus ``GET /export-rules`` (the ROL ruleset at
the path the regex-engine consumer fetches) and ``GET /metrics`` (Prometheus). Every endpoint but
``/health`` and ``/metrics`` needs an ``X-API-Key``;
roles: reader (reads, match) < operator (+ ingest, mine, shadow evaluation, promotion by profile)
< admin (+ manual rule actions, keys).

Errors are JSON ``{"error": code, "detail": text}`` (422 adds ``fields``): 401 missing or unknown
key, 403 role too low, 404 unknown rule or run, 409 a run holds the run lock (or the action does not
apply), 413 body or batch too large, 422 bad JSON or fields, 503 warehouse unreachable. No traceback
reaches a client: unexpected errors are logged with a request id and answered with a bare 500.
"""

import contextlib
import logging
import platform
import re
import secrets
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated, Any

import orjson
import psycopg
from fastapi import Depends, FastAPI, Query, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.security import APIKeyHeader
from starlette.exceptions import HTTPException

from patas.service import auth, matching
from patas.service import runs as api_runs
from patas.service.db import Pool, ensure_schema, run_lock_held
from patas.service.metrics import ServiceMetrics
from patas.service.schemas import (
    MAX_FEEDBACK_ITEMS,
    MAX_INGEST_MESSAGES,
    MAX_MATCH_MESSAGES,
    AddRuleRequest,
    AnalyzeRequest,
    FeedbackRequest,
    IngestRequest,
    KeyRequest,
    MatchRequest,
    PatternMatchRequest,
    PinRequest,
    PromoteRequest,
    ReasonRequest,
    RunOptions,
)
from python_steps.ingest import feedback as label_feedback
from python_steps.lifecycle import manual, store
from python_steps.lifecycle.policy import LifecycleError
from python_steps.lifecycle.profiles import ProfileError, load_profiles
from python_steps.publish import cards as rule_cards
from python_steps.publish import exports
from python_steps.runspec import RunSpec, RunSpecError
from python_steps.settings import Settings
from python_steps.text.normalize import NORMALIZER_VERSION
from python_steps.warehouse import RUN_LOCK_KEY

log = logging.getLogger("patas.service")

API = "/api/v1"
DEFAULT_MAX_BODY_BYTES = 32 << 20
HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    503: "warehouse_unavailable",
}


class ApiError(HTTPException):
    """An HTTP error with a stable code; HTTPException so FastAPI's body reader lets it through."""

    def __init__(self, status: int, detail: str, code: str | None = None, headers: dict | None = None):
        super().__init__(status_code=status, detail=detail, headers=headers)
        self.code = code or HTTP_CODES.get(status, "error")


class BodyLimit:
    """ASGI middleware: a body over ``max_bytes`` (declared or streamed) is a 413, never read whole."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.max_bytes:
                    await _send_json(send, 413, self._error())
                    return
        seen = 0

        async def limited() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise ApiError(413, self._error()["detail"])
            return message

        await self.app(scope, limited, send)

    def _error(self) -> dict[str, str]:
        return {"error": "payload_too_large", "detail": f"the request body is over {self.max_bytes:,} bytes"}


async def _send_json(send: Any, status: int, body: dict) -> None:
    data = orjson.dumps(body)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": data})


def _version(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def _plain(value: Any) -> Any:
    """JSON-ready: datetimes as ISO text, Decimals as floats (orjson does the rest)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if type(value).__name__ == "Decimal":
        return float(value)
    return value


class ORJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(_plain(content), option=orjson.OPT_NON_STR_KEYS)


def _field_name(loc: tuple | list) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def create_app(
    settings: Settings,
    url: str,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    match_check_interval: float = 1.0,
    pool_size: int = 8,
) -> FastAPI:
    """The API over the warehouse at ``url`` (``settings.home`` holds exports, API ingest files, run logs)."""
    pool = Pool(url, size=pool_size)
    with pool.connection() as conn:
        ensure_schema(conn)
    matcher = matching.Matcher(pool.connection, check_interval=match_check_interval)
    service_metrics = ServiceMetrics(pool.connection, settings.home / "reports")

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        pool.close()

    app = FastAPI(
        title="PATAS",
        version=_version("patas") or "0",
        description=(
            "Pattern Analysis and Transparent Anti-Spam: ingest labelled messages, mine patterns, "
            "shadow-evaluate and promote typed rules, export them, and match raw texts against the "
            "active set. Send your key as `X-API-Key`."
        ),
        default_response_class=ORJSONResponse,
        lifespan=lifespan,
    )
    app.state.pool, app.state.matcher, app.state.settings, app.state.url = pool, matcher, settings, url
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)

    # ---- errors --------------------------------------------------------------------------------

    @app.exception_handler(HTTPException)
    async def _http_error(_request: Request, exc: HTTPException) -> Response:
        code = getattr(exc, "code", None) or HTTP_CODES.get(exc.status_code, "error")
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        return ORJSONResponse({"error": code, "detail": detail}, exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> Response:
        fields = []
        for e in exc.errors():
            if e.get("type") == "json_invalid":
                detail = e.get("ctx", {}).get("error", "invalid JSON")
                fields.append({"field": "body", "message": f"the body is not valid JSON: {detail}"})
            else:
                fields.append(
                    {"field": _field_name(e.get("loc", ())), "message": str(e.get("msg", "invalid"))}
                )
        text = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
        return ORJSONResponse({"error": "invalid_request", "detail": text, "fields": fields}, 422)

    @app.exception_handler(psycopg.DataError)
    async def _bad_value(_request: Request, exc: psycopg.DataError) -> Response:
        detail = "a value the warehouse cannot take (for example a NUL character or an out-of-range number)"
        return ORJSONResponse({"error": "invalid_value", "detail": detail}, 422)

    @app.exception_handler(psycopg.OperationalError)
    async def _warehouse_down(_request: Request, exc: psycopg.OperationalError) -> Response:
        ref = uuid.uuid4().hex[:12]
        log.warning("warehouse unavailable (ref %s): %s", ref, type(exc).__name__)
        return ORJSONResponse(
            {"error": "warehouse_unavailable", "detail": f"the warehouse is unreachable (ref {ref})"}, 503
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        ref = uuid.uuid4().hex[:12]
        log.error("unhandled error (ref %s) on %s %s", ref, request.method, request.url.path, exc_info=exc)
        return ORJSONResponse({"error": "internal_error", "detail": f"internal error (ref {ref})"}, 500)

    # ---- dependencies --------------------------------------------------------------------------

    key_header = APIKeyHeader(
        name="X-API-Key", auto_error=False, description="a key from `patas apikey create`"
    )

    def db() -> Iterator[psycopg.Connection]:
        with pool.connection() as conn:
            yield conn

    def caller_with(role: str):
        def dependency(token: Annotated[str | None, Security(key_header)]) -> auth.Caller:
            if not token:
                raise ApiError(401, "missing X-API-Key header", headers={"WWW-Authenticate": "X-API-Key"})
            with pool.connection() as conn:
                caller = auth.lookup(conn, token)
            if caller is None:
                raise ApiError(401, "unknown or revoked API key", headers={"WWW-Authenticate": "X-API-Key"})
            if not caller.allows(role):
                raise ApiError(
                    403, f"this endpoint needs the {role} role; key {caller.name!r} is {caller.role}"
                )
            return caller

        return dependency

    Reader = Annotated[auth.Caller, Depends(caller_with("reader"))]
    Operator = Annotated[auth.Caller, Depends(caller_with("operator"))]
    Admin = Annotated[auth.Caller, Depends(caller_with("admin"))]
    Conn = Annotated[psycopg.Connection, Depends(db)]

    def profiles():
        return load_profiles(settings.home / "safety_profiles.toml")

    def check_profile(name: str | None) -> None:
        if name is None:
            return
        try:
            profiles().get(name)
        except ProfileError as exc:
            raise ApiError(422, str(exc)) from None

    def start(kind: str, caller: auth.Caller, options: RunOptions | None) -> tuple[str, Any]:
        params = options.model_dump(exclude_none=True) if options else {}
        params.pop("messages", None)
        params.pop("timeout_seconds", None)
        force = bool(params.pop("force", False))
        check_profile(params.get("profile"))
        try:
            RunSpec(**params)
        except RunSpecError as exc:
            raise ApiError(422, str(exc)) from None
        try:
            return api_runs.start_run(
                kind, requested_by=caller.name, params=params, settings=settings, url=url, force=force
            )
        except api_runs.RunBusy as exc:
            raise ApiError(409, f"a PATAS run holds the run lock: {exc}", code="run_in_progress") from None

    def check_batch(n: int, limit: int) -> None:
        if n > limit:
            raise ApiError(413, f"{n:,} messages: at most {limit:,} per request", code="too_many_messages")

    def ingest(conn: psycopg.Connection, messages: list[Any], caller: auth.Caller) -> dict[str, Any]:
        check_batch(len(messages), MAX_INGEST_MESSAGES)
        from python_steps.ingest.load import ingest_file

        folder = settings.home / "api_ingest"
        folder.mkdir(parents=True, exist_ok=True)
        who = re.sub(r"[^A-Za-z0-9_.-]+", "_", caller.name)[:40]
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        path = folder / f"{stamp}-{who}-{secrets.token_hex(4)}.jsonl"
        with open(path, "wb") as fh:
            for m in messages:
                fh.write(orjson.dumps(m) + b"\n")
        report = ingest_file(conn, path, fmt="jsonl", max_text_bytes=settings.max_text_bytes)
        out: dict[str, Any] = {**report.as_dict(), "source_path": str(path)}
        rows = conn.execute(
            "select line_number, reason_code, reason from raw.ingest_quarantine where batch_id = %s "
            "order by line_number limit 1000",
            (report.batch_id,),
        ).fetchall()
        out["quarantine"] = [{"index": r[0] - 1, "reason_code": r[1], "reason": r[2]} for r in rows]
        return out

    # ---- health --------------------------------------------------------------------------------

    @app.get(f"{API}/health", tags=["service"], summary="Warehouse reachable, last run, versions (no key)")
    def health() -> Response:
        body: dict[str, Any] = {
            "status": "ok",
            "versions": {
                "patas": _version("patas"),
                "normalizer": NORMALIZER_VERSION,
                "python": platform.python_version(),
                "fastapi": _version("fastapi"),
                "dagster": _version("dagster"),
                "dbt-core": _version("dbt-core"),
            },
        }
        try:
            with pool.connection() as conn:
                body["warehouse"] = {
                    "reachable": True,
                    "server_version": conn.info.parameter_status("server_version"),
                }
                body["run_in_progress"] = run_lock_held(conn)
                last = None
                if conn.execute("select to_regclass('patas.runs') is not null").fetchone()[0]:
                    last = conn.execute(
                        "select run_id, split_mode, started_at from patas.runs order by started_at desc, run_id limit 1"
                    ).fetchone()
                body["last_run"] = (
                    None
                    if last is None
                    else {"run_id": last[0], "split_mode": last[1], "started_at": last[2]}
                )
                if last is not None:
                    state = api_runs.run_state(conn, last[0], settings, ask_dagster=False) or {}
                    body["last_run"]["status"] = state.get("status")
            body["active_rules"] = len(matcher.ruleset().rules)
        except psycopg.Error as exc:
            body["status"] = "degraded"
            body["warehouse"] = {"reachable": False, "error": type(exc).__name__}
            return ORJSONResponse(body, 503)
        return ORJSONResponse(body)

    @app.get("/metrics", tags=["service"], summary="Prometheus metrics (no key)")
    def metrics() -> Response:
        """Rules by status, the active set's precision and recall, ingest counts, quality gates, label
        feedback, LLM tokens, the last run's duration and stage times, this server's match counts."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return Response(generate_latest(service_metrics.registry), media_type=CONTENT_TYPE_LATEST)

    # ---- ingest, mining, runs ------------------------------------------------------------------

    @app.post(f"{API}/messages/ingest", tags=["ingest"], summary="Load a batch of messages (at most 5,000)")
    def ingest_messages(body: IngestRequest, caller: Operator, conn: Conn) -> dict:
        """The file-ingest contract: every message ends loaded, duplicate or quarantined with a reason
        (``index`` is its position in ``messages``); ``read = loaded + duplicate + quarantined``."""
        return ingest(conn, body.messages, caller)

    @app.post(f"{API}/feedback", tags=["ingest"], summary="Verdicts on ingested messages (label feedback)")
    def feedback(body: FeedbackRequest, caller: Operator, conn: Conn) -> dict:
        """Moderator or user-appeal verdicts: the next run evaluates with them (the latest verdict per
        message overrides its label) and deprecates active rules whose hits were reversed beyond the
        profile's ``max_reversed_share``. All or nothing: an unknown id is a 404, nothing recorded."""
        items = body.items()
        check_batch(len(items), MAX_FEEDBACK_ITEMS)
        try:
            verdicts = [label_feedback.make_feedback(i.id, i.verdict, i.source, i.note) for i in items]
            counts = label_feedback.record_feedback(conn, verdicts, actor=f"api:{caller.name}")
        except label_feedback.FeedbackError as exc:
            status = 404 if str(exc).startswith("unknown message id") else 422
            raise ApiError(status, str(exc)) from None
        return counts

    @app.post(f"{API}/patterns/mine", tags=["runs"], status_code=202, summary="Start a pipeline run")
    def mine(caller: Operator, conn: Conn, body: RunOptions | None = None) -> dict:
        """Runs the whole graph (stage 1, drafting, shadow evaluation, lifecycle, exports) on the Dagster
        instance (visible in ``patas ui``). 409 while another run holds the run lock. With nothing
        new since the latest run (no message, label feedback or manual action, the same options,
        settings and code) no step runs: the run is a ``success`` at once, its summary the latest
        run's, marked ``nothing_new``; ``"force": true`` runs the graph anyway."""
        run_id, _ = start("mine", caller, body)
        state = api_runs.run_state(conn, run_id, settings, ask_dagster=False) or {}
        out = {"run_id": run_id, "status": state.get("status", "running"), "run": f"{API}/runs/{run_id}"}
        if (state.get("summary") or {}).get("nothing_new"):
            out["nothing_new"] = state["summary"]["nothing_new"]
        return out

    @app.get(f"{API}/runs/{{run_id}}", tags=["runs"], summary="A run's state and summary")
    def get_run(run_id: str, caller: Reader, conn: Conn) -> dict:
        state = api_runs.run_state(conn, run_id, settings)
        if state is None:
            raise ApiError(404, f"no run {run_id!r}")
        return state

    @app.post(f"{API}/rules/eval-shadow", tags=["runs"], status_code=202, summary="Re-run shadow evaluation")
    def eval_shadow(caller: Operator, body: RunOptions | None = None) -> dict:
        """Shadow evaluation of every drafted and manual rule on the evaluation window, then the
        lifecycle, ``active_rules`` and the exports (stage 1 and drafting are not re-run)."""
        run_id, _ = start("eval_shadow", caller, body)
        return {"run_id": run_id, "status": "running", "run": f"{API}/runs/{run_id}"}

    @app.post(f"{API}/analyze", tags=["runs"], summary="Ingest a small batch, run, return rules and metrics")
    def analyze(body: AnalyzeRequest, caller: Operator, conn: Conn) -> Response:
        check_batch(len(body.messages), MAX_INGEST_MESSAGES)
        if run_lock_held(conn):
            raise ApiError(
                409, "a PATAS run holds the run lock; nothing was ingested", code="run_in_progress"
            )
        report = ingest(conn, body.messages, caller)
        try:
            run_id, proc = start("analyze", caller, body)
        except ApiError as exc:
            if exc.status_code != 409:
                raise
            raise ApiError(
                409, f"{exc.detail}; batch {report['batch_id']} was ingested", code="run_in_progress"
            ) from None
        try:
            proc.wait(timeout=body.timeout_seconds)
        except subprocess.TimeoutExpired:  # still running: the caller polls
            return ORJSONResponse(
                {"ingest": report, "run_id": run_id, "status": "running", "run": f"{API}/runs/{run_id}"}, 202
            )
        state = api_runs.run_state(conn, run_id, settings) or {}
        active = rule_cards.list_rules(conn, status="active")
        rulesets = []
        if conn.execute("select to_regclass('marts.ruleset_evaluation') is not null").fetchone()[0]:
            with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
                rulesets = cur.execute("select * from marts.ruleset_evaluation order by 1, 2").fetchall()
        matcher.invalidate()
        return ORJSONResponse(
            {"ingest": report, "run": state, "active_rules": active, "rulesets": rulesets},
            202 if state.get("status") == "running" else 200,
        )

    # ---- patterns and rules (reads) ------------------------------------------------------------

    @app.get(f"{API}/patterns", tags=["rules"], summary="Stage-1 signals and semantic clusters behind rules")
    def patterns(
        caller: Reader,
        conn: Conn,
        kind: Annotated[str | None, Query(pattern="^(signal|cluster)$")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> dict:
        return _patterns(conn, kind, limit, offset)

    @app.post(
        f"{API}/patterns/match", tags=["match"], summary="The known patterns nearest to a text, by meaning"
    )
    def match_patterns(body: PatternMatchRequest, caller: Reader, conn: Conn) -> dict:
        from python_steps.mining import library
        from python_steps.mining.embeddings import EmbeddingConfig

        if not body.text.strip():
            raise ApiError(422, "text: must not be blank")
        return library.match(conn, body.text, EmbeddingConfig.from_settings(settings), k=body.k)

    @app.get(f"{API}/rules", tags=["rules"], summary="Rules, filtered and paginated")
    def list_rules(
        caller: Reader,
        conn: Conn,
        status: Annotated[str | None, Query(pattern="^(candidate|shadow|active|deprecated)$")] = None,
        profile: Annotated[
            str | None, Query(description="rules this safety profile would make active")
        ] = None,
        min_precision: Annotated[float | None, Query(ge=0, le=1)] = None,
        include_evaluation: bool = False,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> dict:
        rows = rule_cards.list_rules(conn, status=status)
        if profile is not None:
            check_profile(profile)
            members: set[str] = set()
            if conn.execute("select to_regclass('patas.ruleset_members') is not null").fetchone()[0]:
                members = {
                    r[0]
                    for r in conn.execute(
                        "select rule_id from patas.ruleset_members where ruleset_name = %s",
                        (f"profile:{profile}",),
                    )
                }
            rows = [r for r in rows if r["rule_id"] in members]
        if min_precision is not None:
            rows = [r for r in rows if r.get("precision") is not None and r["precision"] >= min_precision]
        page = rows[offset : offset + limit]
        if not include_evaluation:
            page = [
                {k: v for k, v in r.items() if k not in (*rule_cards.LIST_METRICS, "evaluated_run_id")}
                for r in page
            ]
        return {
            "total": len(rows),
            "offset": offset,
            "limit": limit,
            "next_offset": offset + limit if offset + limit < len(rows) else None,
            "rules": page,
        }

    def export_text(conn: psycopg.Connection, backend: str, status: str) -> Response:
        text = exports.export_rules(conn, backend, status=status)
        if backend == "sql":
            return PlainTextResponse(text, media_type="application/sql; charset=utf-8")
        return Response(text, media_type="application/json")

    @app.get(f"{API}/rules/export", tags=["rules"], summary="The rules as SQL, ROL or typed JSON")
    def export(
        caller: Reader,
        conn: Conn,
        backend: Annotated[str, Query(pattern="^(sql|rol|json)$")] = "rol",
        status: Annotated[str, Query(pattern="^(candidate|shadow|active|deprecated|all)$")] = "active",
    ) -> Response:
        return export_text(conn, backend, status)

    @app.get("/export-rules", tags=["rules"], summary="The active ROL ruleset (regex-engine consumers)")
    def export_rules_rol(caller: Reader, conn: Conn) -> Response:
        return export_text(conn, "rol", "active")

    @app.get(f"{API}/rules/review", tags=["lifecycle"], summary="REVIEW_ONLY rules waiting for a person")
    def review_queue(caller: Reader, conn: Conn, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict:
        rows = manual.review_queue(conn, limit=limit)
        return {"rules": rows, "count": len(rows)}

    @app.get(f"{API}/rules/{{rule_id}}", tags=["rules"], summary="The rule card")
    def get_rule(rule_id: str, caller: Reader, conn: Conn) -> dict:
        try:
            return rule_cards.rule_card(conn, rule_id)
        except rule_cards.RuleNotFound as exc:
            raise ApiError(404, str(exc)) from None

    # ---- matching ------------------------------------------------------------------------------

    @app.post(f"{API}/rules/match", tags=["match"], summary="Apply the active rules to raw texts")
    def match(body: MatchRequest, caller: Reader) -> dict:
        """The one normalizer, then every active rule through the Python evaluator. ``text`` (one message)
        or ``messages`` (at most 1,000 raw texts or ``{id, text, meta}`` objects)."""
        check_batch(len(body.messages or ()), MAX_MATCH_MESSAGES)
        items: list[tuple[str | None, str, dict | None]] = (
            [(None, body.text, body.meta)]  # type: ignore[list-item]
            if body.text is not None
            else [
                (None, m, None) if isinstance(m, str) else (m.id, m.text, m.meta) for m in body.messages or []
            ]
        )
        t0 = time.perf_counter()
        ruleset, matched = matcher.match([(text, meta) for _, text, meta in items])
        service_metrics.match_requests.inc()
        service_metrics.match_messages.inc(len(items))
        service_metrics.match_hits.inc(sum(len(hits) for hits in matched))
        results = [
            {
                "index": i,
                "id": items[i][0],
                "matched": [
                    {"rule_id": r.rule_id, "tier": r.tier, "description": r.description} for r in hits
                ],
            }
            for i, hits in enumerate(matched)
        ]
        return {
            "ruleset": {
                "fingerprint": ruleset.fingerprint,
                "rule_count": len(ruleset.rules),
                "skipped": list(ruleset.skipped),
            },
            "normalizer": NORMALIZER_VERSION,
            "seconds": round(time.perf_counter() - t0, 6),
            "results": results,
        }

    # ---- lifecycle (writes) --------------------------------------------------------------------

    @app.post(f"{API}/rules", tags=["lifecycle"], status_code=201, summary="Add a typed or raw-SQL rule")
    def add_rule(body: AddRuleRequest, caller: Admin, conn: Conn) -> dict:
        """The rule lands as a candidate (audited with the key name); ``eval-shadow`` measures it and
        moves it to shadow. Raw SQL goes through ``validate_sql`` and a read-only dry run."""
        from python_steps import rules as rl

        try:
            result = manual.add_manual_rule(
                conn,
                body.rule,
                raw_sql=body.sql,
                reason=body.reason,
                actor=caller.actor,
                description=body.description,
            )
        except (LifecycleError, rl.RuleError, ValueError) as exc:
            raise ApiError(422, str(exc), code="rule_rejected") from None
        status = conn.execute(
            "select status from patas.rule_lifecycle where rule_id = %s", (result["rule_id"],)
        )
        return {**result, "status": status.fetchone()[0]}

    def manual_action(action: str, rule_id: str, caller: auth.Caller, conn: psycopg.Connection, **kw) -> dict:
        """Audited as ``api:<key name>``; ``marts.active_rules``, the export files and the match set
        reflect the action before this returns (``publish.exports.manual_action``)."""
        try:
            full_id = rule_cards.resolve_rule_id(conn, rule_id)
        except rule_cards.RuleNotFound as exc:
            raise ApiError(404, str(exc)) from None
        try:
            result = exports.manual_action(
                conn, action, full_id, actor=caller.actor, exports_dir=settings.exports_dir, **kw
            )
        except LifecycleError as exc:
            raise ApiError(409, str(exc), code="lifecycle_conflict") from None
        matcher.invalidate()
        files = {fmt: str(settings.exports_dir / name) for fmt, name in sorted(exports.FILE_NAMES.items())}
        return {**result, "actor": caller.actor, "exports": files}

    @app.post(f"{API}/rules/{{rule_id}}/promote", tags=["lifecycle"], summary="Make a rule active by hand")
    def promote_one(rule_id: str, body: ReasonRequest, caller: Admin, conn: Conn) -> dict:
        return manual_action("promote", rule_id, caller, conn, reason=body.reason)

    @app.post(
        f"{API}/rules/{{rule_id}}/approve", tags=["lifecycle"], summary="Approve a rule waiting for review"
    )
    def approve_one(rule_id: str, body: ReasonRequest, caller: Admin, conn: Conn) -> dict:
        return manual_action("approve", rule_id, caller, conn, reason=body.reason)

    @app.post(
        f"{API}/rules/{{rule_id}}/reject", tags=["lifecycle"], summary="Reject a rule waiting for review"
    )
    def reject_one(rule_id: str, body: ReasonRequest, caller: Admin, conn: Conn) -> dict:
        return manual_action("reject", rule_id, caller, conn, reason=body.reason)

    @app.post(f"{API}/rules/{{rule_id}}/deprecate", tags=["lifecycle"], summary="Deprecate a rule by hand")
    def deprecate_one(rule_id: str, body: ReasonRequest, caller: Admin, conn: Conn) -> dict:
        return manual_action("deprecate", rule_id, caller, conn, reason=body.reason)

    @app.post(f"{API}/rules/{{rule_id}}/pin", tags=["lifecycle"], summary="Pin (or unpin) a rule")
    def pin_one(rule_id: str, body: PinRequest, caller: Admin, conn: Conn) -> dict:
        return manual_action("pin", rule_id, caller, conn, reason=body.reason, pinned=body.pinned)

    @app.post(
        f"{API}/rules/promote", tags=["lifecycle"], summary="Apply a safety profile to the latest evaluation"
    )
    def promote_by_profile(caller: Operator, body: PromoteRequest | None = None) -> dict:
        """Promotion and deprecation by profile on the latest shadow evaluation, audited as
        ``api:<key name>``. ``dry_run`` lists the transitions and changes nothing."""
        body = body or PromoteRequest()
        check_profile(body.profile)
        with pool.connection() as conn:
            got = conn.execute("select pg_try_advisory_lock(%s)", (RUN_LOCK_KEY,)).fetchone()[0]
            if not got:
                raise ApiError(409, "a PATAS run holds the run lock", code="run_in_progress")
            try:
                return _promote(conn, body, caller)
            finally:
                conn.execute("select pg_advisory_unlock(%s)", (RUN_LOCK_KEY,))

    def _promote(conn: psycopg.Connection, body: PromoteRequest, caller: auth.Caller) -> dict:
        if not conn.execute("select to_regclass('marts.rule_evaluations') is not null").fetchone()[0]:
            raise ApiError(409, "no shadow evaluation yet: run patterns/mine first", code="not_evaluated")
        run_ids = [r[0] for r in conn.execute("select distinct evaluated_run_id from marts.rule_evaluations")]
        if len(run_ids) != 1:
            raise ApiError(
                409, f"shadow evaluation holds {len(run_ids)} runs; run eval-shadow", code="not_evaluated"
            )
        before = conn.execute("select coalesce(max(audit_id), 0) from patas.rule_audit").fetchone()[0]
        profile_name = body.profile or settings.profile
        try:
            with conn.transaction() as tx:
                summary = store.apply_lifecycle(
                    conn,
                    run_id=run_ids[0],
                    profile=profile_name,
                    config=profiles(),
                    actor=caller.actor,
                    languages=settings.languages,
                )
                changes = [
                    {"rule_id": r[0], "from_status": r[1], "to_status": r[2], "reason": r[3]}
                    for r in conn.execute(
                        "select rule_id, from_status, to_status, reason from patas.rule_audit "
                        "where audit_id > %s order by audit_id",
                        (before,),
                    )
                ]
                if body.dry_run:
                    raise psycopg.Rollback(tx)
                # Consumers see the new active set when this returns: the mart now, the files below.
                manual.refresh_active_rules(conn)
                texts = exports.render_exports(conn)
        except LifecycleError as exc:
            raise ApiError(409, str(exc), code="lifecycle_conflict") from None
        out = {"dry_run": body.dry_run, "profile": profile_name, "run_id": run_ids[0], "changes": changes}
        out["summary"] = summary
        if not body.dry_run:
            written = exports.write_export_texts(texts, settings.exports_dir)
            matcher.invalidate()
            out["exports"] = {fmt: str(p) for fmt, p in sorted(written.items())}
        return out

    # ---- keys ----------------------------------------------------------------------------------

    @app.get(f"{API}/keys", tags=["keys"], summary="API keys (never their tokens)")
    def keys(caller: Admin, conn: Conn, include_revoked: bool = False) -> dict:
        return {"keys": auth.list_keys(conn, include_revoked=include_revoked)}

    @app.post(f"{API}/keys", tags=["keys"], status_code=201, summary="Create a key (the token is shown once)")
    def create_key(body: KeyRequest, caller: Admin, conn: Conn) -> dict:
        try:
            return auth.create_key(conn, body.name, body.role, created_by=caller.actor)
        except auth.ApiKeyError as exc:
            raise ApiError(409, str(exc)) from None

    @app.delete(f"{API}/keys/{{name}}", tags=["keys"], summary="Revoke a key")
    def revoke_key(name: str, caller: Admin, conn: Conn) -> dict:
        try:
            return auth.revoke_key(conn, name)
        except auth.ApiKeyError as exc:
            raise ApiError(404, str(exc)) from None

    return app


def _patterns(conn: psycopg.Connection, kind: str | None, limit: int, offset: int) -> dict[str, Any]:
    """Stage-1 candidate signals and semantic clusters, each with the rules drafted from it."""

    def exists(rel: str) -> bool:
        return conn.execute("select to_regclass(%s) is not null", (rel,)).fetchone()[0]

    rules_by_pattern: dict[str, list[str]] = {}
    if exists("patas.rule_drafts"):
        for pid, rid in conn.execute(
            "select distinct pattern_id, rule_id from patas.rule_drafts where pattern_id is not null order by 1, 2"
        ):
            rules_by_pattern.setdefault(pid, []).append(rid)
    items: list[dict[str, Any]] = []
    if kind in (None, "signal") and exists("marts.stage1_candidates"):
        with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
            for r in cur.execute(
                "select * from marts.stage1_candidates order by suspiciousness_rank, signal_kind, signal_value"
            ):
                pid = f"signal:{r['signal_kind']}:{r['signal_value']}"
                items.append(
                    {"pattern_id": pid, "kind": "signal", **r, "rule_ids": rules_by_pattern.get(pid, [])}
                )
    if kind in (None, "cluster") and exists("patas.semantic_clusters"):
        with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
            for r in cur.execute(
                "select * from patas.semantic_clusters order by message_count desc, cluster_id"
            ):
                pid = f"cluster:{r['cluster_id']}"
                r.pop("centroid", None)  # the vector is the library's business (POST /patterns/match)
                items.append(
                    {"pattern_id": pid, "kind": "cluster", **r, "rule_ids": rules_by_pattern.get(pid, [])}
                )
    return {
        "total": len(items),
        "offset": offset,
        "limit": limit,
        "next_offset": offset + limit if offset + limit < len(items) else None,
        "patterns": items[offset : offset + limit],
    }
