"""The tables PATAS writes from Python: their names and their DDL, in one place.

dbt owns the models; these tables are written by Python steps and re-enter dbt as sources
(``models/staging/_raw__sources.yml``, ``_patas__sources.yml``). Tests build their databases through
:func:`ensure_all`, never from a copy of these definitions.

Versioned migrations. The DDL strings below are migration 1, the schema as it stood at commit
bd60739 (``create ... if not exists``, so a warehouse built before migrations existed adopts it
unchanged); they are frozen. Every later change is a new step appended to :data:`MIGRATIONS`
(SQL that moves existing data along), never an edit of those strings.
:func:`ensure_all` (= :func:`migrate`) applies the missing steps in order, in ONE transaction under
a transaction-level advisory lock, and records each in ``patas.schema_migrations``: idempotent,
safe when several processes start at once, all or nothing. ``patas ingest``, ``patas run`` and
``patas serve`` call it at start; every step that writes calls it too (a no-op once up to date).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import psycopg

# -- names ----------------------------------------------------------------------------------------
RAW_MESSAGES = "raw.messages"
RAW_INGEST_BATCHES = "raw.ingest_batches"
RAW_INGEST_QUARANTINE = "raw.ingest_quarantine"
RUNS = "patas.runs"
RULE_DRAFTS = "patas.rule_drafts"
RULE_SIGNAL_CLAUSES = "patas.rule_signal_clauses"
RULE_COUNTEREXAMPLES = "patas.rule_counterexamples"
SEMANTIC_CLUSTERS = "patas.semantic_clusters"
SEMANTIC_CLUSTER_MEMBERS = "patas.semantic_cluster_members"
STAGE2_RUNS = "patas.stage2_runs"
EMBEDDING_CACHE = "patas.embedding_cache"
PATTERNS = "patas.patterns"
PATTERN_VERSIONS = "patas.pattern_versions"
RULE_LIFECYCLE = "patas.rule_lifecycle"
RULE_AUDIT = "patas.rule_audit"
RULE_METRICS_HISTORY = "patas.rule_metrics_history"
RULESET_MEMBERS = "patas.ruleset_members"
LLM_CACHE = "patas.llm_cache"
LLM_CALLS = "patas.llm_calls"
LLM_RUNS = "patas.llm_runs"
API_KEYS = "patas.api_keys"
API_RUNS = "patas.api_runs"
LABEL_FEEDBACK = "patas.label_feedback"
BATCH_PROFILES = "patas.batch_profiles"
QUALITY_GATE_RESULTS = "patas.quality_gate_results"
EVALUATION_PROFILES = "patas.evaluation_profiles"
RUN_STEP_STATES = "patas.run_step_states"

# dbt models the Python steps read (their names are dbt's; listed here so Python has one spelling).
STAGE1_CANDIDATES = "marts.stage1_candidates"
MESSAGE_SIGNALS = "intermediate.int_message_signals_extracted"
MESSAGES_NORMALIZED = "intermediate.int_messages_normalized"
MESSAGES_ENRICHED = "intermediate.int_messages_enriched"
MESSAGES_WINDOWED = "intermediate.int_messages_windowed"
RULE_HITS = "marts.rule_hits"
RULE_EVALUATIONS = "marts.rule_evaluations"
LABELS_OVERRIDDEN = "intermediate.int_message_labels_overridden"

SCHEMA_MIGRATIONS = "patas.schema_migrations"

DDL_LOCK_KEY = 0x5A7A5 + 1  # transaction-level: concurrent first runs do not race on migrations

# -- DDL: migration 1, frozen (change the schema with a new step in MIGRATIONS, below) ---------
RAW_DDL = """
create schema if not exists raw;

create table if not exists raw.ingest_batches (
    batch_id bigint generated always as identity primary key,
    source_path text not null,
    source_sha256 text,
    source_format text not null,
    started_at timestamptz not null default now(),
    finished_at timestamptz,
    status text not null default 'running' check (status in ('running', 'done', 'failed')),
    read_count bigint not null default 0,
    loaded_count bigint not null default 0,
    duplicate_count bigint not null default 0,
    quarantined_count bigint not null default 0,
    error text,
    constraint ingest_batches_counts_add_up check (
        status <> 'done' or read_count = loaded_count + duplicate_count + quarantined_count
    )
);

create table if not exists raw.messages (
    message_id bigint generated always as identity (cache 1000) primary key,
    external_id text not null unique,
    event_at timestamptz,
    text text not null,
    is_spam boolean,
    meta jsonb not null default '{}',
    tas_action text check (tas_action in ('blocked', 'allowed')),
    user_complaint boolean,
    unbanned boolean,
    -- batch_id refers to raw.ingest_batches; not a declared foreign key: a per-row RI check
    -- doubles the cost of a bulk load. Only ingestion writes here, in the batch's transaction.
    batch_id bigint not null,
    source_line bigint not null,
    ingested_at timestamptz not null default now()
);

-- Batches are appended in batch_id order, so a BRIN index (a few pages, next to free to keep up
-- during a load) turns "the batches newer than X" of every incremental stage-1 run into a
-- read of the last block ranges instead of a scan of all messages (1M: 167 ms -> 0.1 ms).
create index if not exists messages_batch_id_brin on raw.messages using brin (batch_id);

create table if not exists raw.ingest_quarantine (
    batch_id bigint not null references raw.ingest_batches (batch_id),
    line_number bigint not null,
    reason_code text not null,
    reason text not null,
    raw_line text not null,
    raw_bytes bytea not null,
    primary key (batch_id, line_number)
);
"""

RUNS_DDL = """
create schema if not exists patas;
create table if not exists patas.runs (
    run_id text primary key,
    split_mode text not null,
    windows jsonb not null,
    started_at timestamptz not null default now()
);
"""

DRAFTS_DDL = """
create schema if not exists patas;

create table if not exists patas.rule_drafts (
    rule_id text not null,
    version integer not null,
    rule_json jsonb not null,
    rule_canonical text not null,
    description text not null,
    sql_expression text not null,
    regex text,
    origin text not null check (origin in ('pattern_mining', 'semantic', 'llm', 'manual')),
    pattern_id text,
    evaluation_kind text not null check (evaluation_kind in ('signal', 'predicate')),
    complexity integer,
    drafted_run_id text,
    created_at timestamptz not null default now(),
    primary key (rule_id, version)
);

create table if not exists patas.rule_signal_clauses (
    rule_id text not null,
    clause_no integer not null,
    signal_kind text not null,
    signal_value text not null,
    primary key (rule_id, clause_no, signal_kind, signal_value)
);
create index if not exists rule_signal_clauses_signal_idx
    on patas.rule_signal_clauses (signal_kind, signal_value);

create table if not exists patas.rule_counterexamples (
    rule_id text not null,
    example_kind text not null check (example_kind in ('matched_ham', 'nearest_unmatched_ham')),
    rank integer not null,
    message_id bigint not null,
    shared_signal_count integer,
    drafted_run_id text,
    primary key (rule_id, example_kind, rank)
);
"""

CLUSTERS_DDL = """
create schema if not exists patas;
create table if not exists patas.semantic_clusters (
    cluster_id text primary key,
    run_id text not null,
    message_count integer not null,
    sample_size integer not null,
    top_entities jsonb not null,
    top_phrases jsonb not null,
    examples jsonb not null,
    counter_examples jsonb not null
);
create table if not exists patas.semantic_cluster_members (
    cluster_id text not null,
    message_id bigint not null,
    primary key (cluster_id, message_id)
);
"""

LIFECYCLE_DDL = """
create schema if not exists patas;

create table if not exists patas.rule_lifecycle (
    rule_id text primary key,
    version integer not null,
    status text not null check (status in ('candidate', 'shadow', 'active', 'deprecated')),
    is_pinned boolean not null default false,
    tier text not null default 'FEATURE_ONLY'
        check (tier in ('SAFE_AUTO', 'REVIEW_ONLY', 'FEATURE_ONLY')),
    promoted_at timestamptz,
    promoted_run_id text,
    promoted_metrics jsonb,
    status_reason text,
    updated_run_id text,
    updated_at timestamptz not null default now()
);

create table if not exists patas.rule_audit (
    audit_id bigint generated always as identity primary key,
    rule_id text not null,
    version integer not null,
    from_status text,
    to_status text not null,
    reason text not null,
    metrics jsonb,
    run_id text,
    actor text not null,
    at timestamptz not null default now()
);
create index if not exists rule_audit__rule_id on patas.rule_audit (rule_id, audit_id);

create table if not exists patas.rule_metrics_history (
    rule_id text not null,
    rule_version integer not null,
    run_id text not null,
    run_seq bigint not null,
    window_name text not null,
    status text not null,
    tier text not null,
    hit_count bigint not null,
    spam_hit_count bigint not null,
    ham_hit_count bigint not null,
    unlabelled_hit_count bigint not null,
    unique_spam_hit_count bigint not null,
    window_message_count bigint not null,
    window_spam_count bigint not null,
    window_ham_count bigint not null,
    precision double precision,
    recall double precision,
    coverage double precision,
    false_positive_rate double precision,
    f1_score double precision,
    precision_lower_bound double precision not null,
    precision_upper_bound double precision not null,
    false_positive_rate_upper_bound double precision not null,
    recorded_at timestamptz not null default now(),
    primary key (rule_id, run_id, window_name)
);

create table if not exists patas.ruleset_members (
    ruleset_name text not null,
    rule_id text not null,
    run_id text not null,
    primary key (ruleset_name, rule_id)
);
"""

LLM_DDL = """
create schema if not exists patas;
create table if not exists patas.llm_cache (
    prompt_hash text primary key,
    model text not null,
    response_text text not null,
    prompt_tokens integer not null,
    completion_tokens integer not null,
    created_at timestamptz not null default now()
);
create table if not exists patas.llm_calls (
    call_id bigint generated always as identity primary key,
    run_id text not null,
    cluster_id text not null,
    prompt_hash text not null,
    outcome text not null,
    detail text,
    prompt_tokens integer not null default 0,
    completion_tokens integer not null default 0,
    rules_proposed integer not null default 0,
    rules_valid integer not null default 0,
    called_at timestamptz not null default now()
);
"""

# The HTTP service's own tables (patas/service): API keys and the runs started through the API.
SERVICE_DDL = """
create schema if not exists patas;

-- One row per API key: only the sha256 of the token is kept; the token is shown once, at creation.
create table if not exists patas.api_keys (
    key_id bigint generated always as identity primary key,
    name text not null,
    role text not null check (role in ('reader', 'operator', 'admin')),
    token_sha256 text not null unique,
    token_prefix text not null,
    created_at timestamptz not null default now(),
    created_by text not null,
    revoked_at timestamptz,
    last_used_at timestamptz
);
create unique index if not exists api_keys__active_name on patas.api_keys (name) where revoked_at is null;

-- One row per pipeline run started through the API (mine, eval_shadow, analyze).
create table if not exists patas.api_runs (
    run_id text primary key,
    kind text not null,
    requested_by text not null,
    params jsonb not null default '{}',
    status text not null check (status in ('running', 'success', 'failure')),
    pid integer,
    started_at timestamptz not null default now(),
    finished_at timestamptz,
    summary jsonb,
    error text
);
"""

# Label feedback (python_steps.ingest.feedback): verdicts on messages after the fact, from moderators,
# user appeals or the API. Append-only: the latest row per message wins (intermediate model
# int_message_labels_overridden), every earlier one stays as the trace.
FEEDBACK_DDL = """
create schema if not exists patas;
create table if not exists patas.label_feedback (
    feedback_id bigint generated always as identity primary key,
    message_id bigint not null,
    external_id text not null,
    verdict text not null check (verdict in ('spam', 'ham')),
    source text not null check (source ~ '^[a-z][a-z0-9_]{0,39}$'),
    note text,
    actor text not null,
    received_at timestamptz not null default now()
);
create index if not exists label_feedback__message_id on patas.label_feedback (message_id, feedback_id);
"""

# Data-quality gates (python_steps.quality): one profile per ingested batch (the history later
# batches are compared with) and the gates' outcome per batch.
QUALITY_DDL = """
create schema if not exists patas;
create table if not exists patas.batch_profiles (
    batch_id bigint primary key,
    read_count bigint not null,
    loaded_count bigint not null,
    duplicate_count bigint not null,
    quarantined_count bigint not null,
    labelled_count bigint not null,
    spam_share double precision,
    unlabelled_share double precision,
    text_length_quantiles jsonb not null,
    future_event_count bigint not null,
    profiled_at timestamptz not null default now()
);
create table if not exists patas.quality_gate_results (
    batch_id bigint not null,
    gate text not null,
    severity text not null check (severity in ('critical', 'warning')),
    status text not null check (status in ('passed', 'failed', 'skipped')),
    observed text,
    expected text,
    detail text not null,
    run_id text,
    checked_at timestamptz not null default now(),
    primary key (batch_id, gate)
);
"""

# Label feedback and the data-quality gates (migration 5): their tables, and the reversed hits the
# lifecycle records per rule and run.
FEEDBACK_QUALITY_DDL = (
    FEEDBACK_DDL
    + QUALITY_DDL
    + """
alter table patas.rule_metrics_history add column if not exists reversed_hit_count bigint not null default 0;
"""
)

# The baseline (migration 1): the tables as of bd60739. Later tables and columns are migrations.
ALL_DDL = (RAW_DDL, RUNS_DDL, DRAFTS_DDL, CLUSTERS_DDL, LIFECYCLE_DDL, LLM_DDL, SERVICE_DDL)

# Stage 2 (python_steps.mining.clustering, embeddings, library): cluster quality and identity,
# the run's stage-2 record, the embedding cache and the pattern library (migration 4).
STAGE2_DDL = """
create schema if not exists patas;
alter table patas.semantic_clusters
    add column if not exists centroid float8[],
    add column if not exists cohesion float8,
    add column if not exists spam_share float8,
    add column if not exists nearest_ham_distance float8,
    add column if not exists matched_similarity float8;
create table if not exists patas.stage2_runs (
    run_id text primary key,
    record jsonb not null,
    recorded_at timestamptz not null default now()
);

create table if not exists patas.embedding_cache (
    provider text not null,
    model text not null,
    text_hash text not null,
    dimensions integer not null,
    embedding float8[] not null,
    created_at timestamptz not null default now(),
    primary key (provider, model, text_hash)
);

create table if not exists patas.patterns (
    pattern_id text primary key,
    kind text not null check (kind in ('cluster', 'rule')),
    provider text not null,
    model text not null,
    dimensions integer not null,
    centroid float8[] not null,
    version integer not null,
    first_run_id text not null,
    last_run_id text not null,
    runs_active integer not null,
    message_count integer not null,
    spam_share float8,
    cohesion float8,
    nearest_ham_distance float8,
    summary jsonb not null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create index if not exists patterns_space on patas.patterns (kind, provider, model);
create table if not exists patas.pattern_versions (
    pattern_id text not null,
    version integer not null,
    run_id text not null,
    centroid float8[] not null,
    message_count integer not null,
    spam_share float8,
    cohesion float8,
    nearest_ham_distance float8,
    recorded_at timestamptz not null default now(),
    primary key (pattern_id, version),
    unique (pattern_id, run_id)
);
"""


# Migration 6: what LLM drafting costs. Every call's money and attempts; one row per run with its
# tokens, cost, privacy mode, budget and the warnings the run report shows (python_steps.mining.llm).
LLM_COST_DDL = """
alter table patas.llm_calls
    add column if not exists cost_usd double precision not null default 0,
    add column if not exists attempts integer not null default 0;
create table if not exists patas.llm_runs (
    run_id text primary key,
    model text not null,
    privacy text not null check (privacy in ('standard', 'strict')),
    prompt_version text not null,
    prompt_tokens bigint not null,
    completion_tokens bigint not null,
    cost_usd double precision not null,
    priced boolean not null,
    budget_usd double precision,
    budget_tokens bigint not null,
    budget_state text not null check (budget_state in ('ok', 'near', 'reached')),
    calls jsonb not null,
    retries integer not null,
    warnings jsonb not null,
    recorded_at timestamptz not null default now()
);
"""


# Migration 7: the language-mix gate (each batch's share of writing scripts) and the evaluation gates
# (one profile per run: window sizes and the active set's precision, compared with the previous run).
GATES_DDL = """
alter table patas.batch_profiles add column if not exists language_shares jsonb;
create table if not exists patas.evaluation_profiles (
    run_id text primary key,
    batch_id bigint not null,
    mining_messages bigint not null,
    evaluation_messages bigint not null,
    evaluation_spam bigint not null,
    evaluation_ham bigint not null,
    active_rule_count integer not null,
    active_spam_hits bigint not null,
    active_ham_hits bigint not null,
    active_precision double precision,
    checked_precision double precision,
    blocked boolean not null default false,
    recorded_at timestamptz not null default now()
);
"""


# Migration 8: what each pattern of the library achieved, per run (python_steps.mining.library):
# the evaluation-window hits of the rules derived from it, how many rules it has and how many are
# active, and whether a returning campaign re-used them in that run.
PATTERN_STATS_DDL = """
create table if not exists patas.pattern_stats (
    pattern_id text not null,
    run_id text not null,
    hits integer not null,
    spam_hits integer not null,
    ham_hits integer not null,
    rules_derived integer not null,
    rules_active integer not null,
    rules_reused integer not null,
    recorded_at timestamptz not null default now(),
    primary key (pattern_id, run_id)
);
"""

# A step's input state per run, and whether the run re-used an earlier result (migration 9,
# python_steps.mining.reuse).
RULE_EVIDENCE_HELD_REASON_DDL = """
alter table patas.rule_evidence add column if not exists held_reason text;
comment on column patas.rule_evidence.held_reason is
    'why this shadow rule did not become active under the run''s profile (null: not a shadow rule after the run)';
"""

RUN_STEP_STATES_DDL = """
create table if not exists patas.run_step_states (
    run_id text not null,
    step text not null,
    input_state text not null,
    output_state text not null,
    skipped boolean not null,
    reason text not null,
    recorded_at timestamptz not null default now(),
    primary key (run_id, step)
);
"""


# -- migrations -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "baseline: the tables as of bd60739 (created where missing)", "\n".join(ALL_DDL)),
    Migration(
        2,
        "ingest_batches: an ended batch says when it ended, a failed one says why",
        """
        update raw.ingest_batches set finished_at = started_at
        where status <> 'running' and finished_at is null;
        update raw.ingest_batches set error = 'failed before schema version 2 (no reason recorded)'
        where status = 'failed' and error is null;
        alter table raw.ingest_batches
            add constraint ingest_batches_end_is_recorded
                check (status = 'running' or finished_at is not null),
            add constraint ingest_batches_failure_is_explained
                check (status <> 'failed' or error is not null);
        """,
    ),
    Migration(
        3,
        "rule_evidence: the evidence promotion weighed in the latest run",
        """
        -- The evidence promotion weighed in the latest run (python_steps.lifecycle.evidence): held-out
        -- hits (cross-fitted), the rule kind's prior and the posterior of the rule's precision.
        create table if not exists patas.rule_evidence (
            rule_id text primary key,
            run_id text not null,
            rule_kind text not null,
            evidence_folds integer not null,
            evidence_folds_used integer not null,
            evidence_spam_hits integer not null,
            evidence_ham_hits integer not null,
            evidence_ham_total integer not null,
            evidence_precision double precision,
            evidence_false_positive_rate double precision,
            prior_mean double precision not null,
            prior_strength double precision not null,
            posterior_mean double precision not null,
            posterior_lower_bound double precision not null,
            tier text not null,
            recorded_at timestamptz not null default now()
        );
        """,
    ),
    Migration(
        4, "stage 2: cluster quality and identity, stage2_runs, embedding cache, pattern library", STAGE2_DDL
    ),
    Migration(
        5, "label feedback, data-quality gates, reversed hits in the metrics history", FEEDBACK_QUALITY_DDL
    ),
    Migration(
        6, "LLM cost: money and attempts per call, llm_runs (tokens, cost, privacy, budget)", LLM_COST_DDL
    ),
    Migration(
        7,
        "quality gates: batch language shares, evaluation_profiles (window sizes, active precision)",
        GATES_DDL,
    ),
    Migration(
        8, "pattern library: success statistics per pattern and run (pattern_stats)", PATTERN_STATS_DDL
    ),
    Migration(
        9,
        "run_step_states: a step's input state per run, and whether the run re-used a result",
        RUN_STEP_STATES_DDL,
    ),
    Migration(
        10,
        "rule_evidence.held_reason: why a shadow rule did not become active under the run's profile",
        RULE_EVIDENCE_HELD_REASON_DDL,
    ),
)
LATEST_VERSION = MIGRATIONS[-1].version

SCHEMA_MIGRATIONS_DDL = """
create schema if not exists patas;
create table if not exists patas.schema_migrations (
    version integer primary key,
    name text not null,
    checksum text not null,
    applied_at timestamptz not null default now()
);
"""


class SchemaVersionError(RuntimeError):
    """The warehouse's schema is newer than this PATAS (an older release pointed at it)."""


def schema_version(conn: psycopg.Connection) -> int:
    """The highest migration applied (0: none, or a warehouse from before migrations)."""
    if conn.execute("select to_regclass(%s)", (SCHEMA_MIGRATIONS,)).fetchone()[0] is None:
        return 0
    return conn.execute("select coalesce(max(version), 0) from patas.schema_migrations").fetchone()[0]


def migrate(conn: psycopg.Connection) -> list[int]:
    """Apply the missing migrations in order, in one transaction; returns the versions applied now.

    ``conn`` must have no open transaction of its own (this commits, or opens a savepoint)."""
    with conn.transaction():
        if schema_version(conn) == LATEST_VERSION:  # the common case: no lock, one read
            return []
        conn.execute("select pg_advisory_xact_lock(%s)", (DDL_LOCK_KEY,))
        conn.execute(SCHEMA_MIGRATIONS_DDL)
        current = schema_version(conn)  # again, under the lock: another process may have migrated
        if current > LATEST_VERSION:
            raise SchemaVersionError(
                f"the warehouse schema is at version {current}, newer than this PATAS knows"
                f" ({LATEST_VERSION}); upgrade PATAS"
            )
        applied = []
        for step in MIGRATIONS:
            if step.version <= current:
                continue
            conn.execute(step.sql)
            conn.execute(
                "insert into patas.schema_migrations (version, name, checksum) values (%s, %s, %s)",
                (step.version, step.name, step.checksum),
            )
            applied.append(step.version)
        return applied


def ensure_all(conn: psycopg.Connection) -> None:
    """Every table PATAS writes from Python, at the latest schema version."""
    migrate(conn)


def latest_computed_step_state(
    conn: psycopg.Connection, step: str, *, other_than_run: str | None = None
) -> tuple[str, str, str] | None:
    """(run_id, input_state, output_state) of the latest run that computed ``step`` (did not re-use
    it), other than ``other_than_run``; None when there is none."""
    return conn.execute(
        """
        select run_id, input_state, output_state from patas.run_step_states
        where step = %s and not skipped and run_id is distinct from %s
        order by recorded_at desc, run_id desc limit 1
        """,
        (step, other_than_run),
    ).fetchone()


def write_step_state(
    conn: psycopg.Connection,
    run_id: str,
    step: str,
    input_state: str,
    output_state: str,
    *,
    skipped: bool,
    reason: str,
) -> None:
    """Upsert one ``patas.run_step_states`` row (one per run and step: drafting, the quality gates)."""
    conn.execute(
        """
        insert into patas.run_step_states (run_id, step, input_state, output_state, skipped, reason)
        values (%s, %s, %s, %s, %s, %s)
        on conflict (run_id, step) do update set input_state = excluded.input_state,
            output_state = excluded.output_state, skipped = excluded.skipped, reason = excluded.reason,
            recorded_at = now()
        """,
        (run_id, step, input_state, output_state, skipped, reason),
    )
