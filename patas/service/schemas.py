"""Request bodies of the HTTP API (pydantic). Responses are plain JSON documents (see app.py)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_INGEST_MESSAGES = 5_000
MAX_MATCH_MESSAGES = 1_000
MAX_FEEDBACK_ITEMS = 5_000


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IngestRequest(_Body):
    # Each item follows the file-ingest contract (docs/contracts.md): an object with text, is_spam,
    # id, timestamp, meta, ... Anything else is quarantined with a reason, as a bad JSONL line is.
    messages: list[Any] = Field(min_length=1, description=f"at most {MAX_INGEST_MESSAGES:,} messages")


class RunOptions(_Body):
    profile: str | None = Field(None, description="safety profile (default: PATAS_PROFILE or conservative)")
    split: Literal["auto", "time", "hash"] | None = None
    mining_start: str | None = None
    mining_end: str | None = None
    evaluation_start: str | None = None
    evaluation_end: str | None = None
    evaluation_share: int | None = Field(None, ge=1, le=99)
    two_stage: bool | None = Field(None, description="false: stage 1 only (simple mode)")
    stage2_slice: str | None = Field(
        None,
        description="the suspicious slice: narrow (1%), default (3%), wide (5%), explore (15%) or a percent",
    )
    stage2_sample_size: int | None = Field(
        None, ge=1, description="stage 2 clusters at most this many messages"
    )
    llm_privacy: Literal["standard", "strict"] | None = Field(
        None, description="what the LLM sees: standard (redacted examples) or strict (aggregates only)"
    )
    force: bool | None = Field(
        None,
        description="run the graph even when nothing changed since the latest run (by default such a "
        "run runs no step: it succeeds at once with the latest run's summary, marked nothing_new)",
    )


class AnalyzeRequest(RunOptions):
    messages: list[Any] = Field(min_length=1, description=f"at most {MAX_INGEST_MESSAGES:,} messages")
    timeout_seconds: int = Field(900, ge=1, le=3600, description="wait this long for the run, then 202")


class MatchMessage(_Body):
    id: str | None = None
    text: str
    meta: dict[str, Any] | None = None


class MatchRequest(_Body):
    text: str | None = Field(None, description="one raw message text")
    meta: dict[str, Any] | None = Field(None, description="meta of the one message (for meta rules)")
    messages: list[str | MatchMessage] | None = Field(
        None,
        description=f"a batch of raw texts (or {{id, text, meta}} objects), at most {MAX_MATCH_MESSAGES:,}",
    )

    @model_validator(mode="after")
    def _one_of(self) -> MatchRequest:
        if (self.text is None) == (self.messages is None):
            raise ValueError("give either text (one message) or messages (a batch)")
        if self.messages is not None and self.meta is not None:
            raise ValueError("meta goes with text; in a batch give {id, text, meta} objects")
        return self


class AddRuleRequest(_Body):
    rule: dict[str, Any] | None = Field(None, description="a typed rule (python_steps/rules/schema.json)")
    sql: str | None = Field(None, description="a raw SQL predicate over m, or a SELECT (validate_sql)")
    reason: str = Field(min_length=1)
    description: str | None = None

    @model_validator(mode="after")
    def _one_of(self) -> AddRuleRequest:
        if (self.rule is None) == (self.sql is None):
            raise ValueError("give either rule (a typed rule) or sql (a raw SQL rule)")
        return self


class ReasonRequest(_Body):
    reason: str = Field(min_length=1, description="why; kept in the audit trail with the caller's key name")


class PinRequest(ReasonRequest):
    pinned: bool = Field(True, description="false removes the pin")


class PromoteRequest(_Body):
    profile: str | None = None
    dry_run: bool = Field(False, description="list what would change, change nothing")


class KeyRequest(_Body):
    name: str = Field(min_length=1, max_length=100)
    role: Literal["reader", "operator", "admin"]


class PatternMatchRequest(_Body):
    text: str = Field(min_length=1, max_length=65536, description="one raw message text")
    k: int = Field(5, ge=1, le=100, description="how many nearest patterns")


class FeedbackItem(_Body):
    id: str = Field(min_length=1, max_length=1000, description="the message's id (external_id) at ingest")
    verdict: Literal["spam", "ham"]
    source: str = Field(
        "moderator", pattern=r"^[a-z][a-z0-9_]{0,39}$", description="moderator, user_appeal, ..."
    )
    note: str | None = Field(None, max_length=2000)


class FeedbackRequest(_Body):
    """One verdict (``id``, ``verdict``, ``source``, ``note``) or a batch of them (``feedback``)."""

    id: str | None = Field(None, min_length=1, max_length=1000)
    verdict: Literal["spam", "ham"] | None = None
    source: str = Field("moderator", pattern=r"^[a-z][a-z0-9_]{0,39}$")
    note: str | None = Field(None, max_length=2000)
    feedback: list[FeedbackItem] | None = Field(
        None, min_length=1, description=f"a batch of verdicts, at most {MAX_FEEDBACK_ITEMS:,}"
    )

    @model_validator(mode="after")
    def _one_of(self) -> FeedbackRequest:
        if self.feedback is None and (self.id is None or self.verdict is None):
            raise ValueError("give id and verdict (one message), or feedback (a batch)")
        if self.feedback is not None and (self.id is not None or self.verdict is not None):
            raise ValueError("give either id and verdict, or feedback, not both")
        return self

    def items(self) -> list[FeedbackItem]:
        if self.feedback is not None:
            return self.feedback
        return [FeedbackItem(id=self.id, verdict=self.verdict, source=self.source, note=self.note)]
