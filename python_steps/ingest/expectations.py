"""great-expectations validation of the newest ingestion batch (imported lazily: GE takes seconds to load)."""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg

SAMPLE_LIMIT = 200_000


@dataclass
class BatchValidation:
    batch_id: int | None
    rows: int
    success: bool
    failed: list[str] = field(default_factory=list)
    statistics: dict = field(default_factory=dict)


def validate_latest_batch(conn: psycopg.Connection) -> BatchValidation:
    """Validate the rows the newest finished batch loaded against the message contract."""
    row = conn.execute(
        "select max(batch_id) from raw.ingest_batches where status = 'done' and loaded_count > 0"
    ).fetchone()
    batch_id = row[0] if row else None
    if batch_id is None:
        return BatchValidation(None, 0, True, statistics={"note": "no batch has loaded rows yet"})
    cur = conn.execute(
        """
        select external_id, text, is_spam, tas_action, length(text) as text_length, meta::text as meta
        from raw.messages where batch_id = %s order by message_id limit %s
        """,
        (batch_id, SAMPLE_LIMIT),
    )
    columns = [d.name for d in cur.description]
    records = cur.fetchall()

    import great_expectations as gx
    import pandas as pd

    df = pd.DataFrame.from_records(records, columns=columns)
    context = gx.get_context(mode="ephemeral")
    batch = (
        context.data_sources.add_pandas("patas")
        .add_dataframe_asset("latest_batch")
        .add_batch_definition_whole_dataframe("whole")
        .get_batch(batch_parameters={"dataframe": df})
    )
    suite = gx.ExpectationSuite(name="raw_messages_batch")
    for expectation in (
        gx.expectations.ExpectColumnValuesToNotBeNull(column="external_id"),
        gx.expectations.ExpectColumnValuesToBeUnique(column="external_id"),
        gx.expectations.ExpectColumnValuesToNotBeNull(column="text"),
        gx.expectations.ExpectColumnValuesToBeBetween(column="text_length", min_value=1),
        gx.expectations.ExpectColumnValuesToBeInSet(column="tas_action", value_set=["blocked", "allowed"]),
        gx.expectations.ExpectColumnValuesToNotBeNull(column="meta"),
    ):
        suite.add_expectation(expectation)
    result = batch.validate(suite)
    failed = [
        f"{r.expectation_config.type}({r.expectation_config.kwargs.get('column')})"
        for r in result.results
        if not r.success
    ]
    spam_share = float(df["is_spam"].dropna().astype(bool).mean()) if df["is_spam"].notna().any() else None
    return BatchValidation(
        batch_id,
        len(df),
        bool(result.success),
        failed,
        {"labelled_spam_share": spam_share, "unlabelled": int(df["is_spam"].isna().sum())},
    )
