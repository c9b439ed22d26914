"""Ingestion: files -> raw.messages (python_steps.ingest does the work)."""

from pathlib import Path

import dagster as dg

from patas_dagster.resources import WarehouseResource
from python_steps import ingest, report
from python_steps.settings import load_settings


class IngestConfig(dg.Config):
    """Files to load in this run; none means "no new files": the asset reports what is there."""

    paths: list[str] = []
    fmt: str | None = None
    max_text_bytes: int | None = None


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            ["raw", "messages"], group_name="ingestion", description="One row per distinct message."
        ),
        dg.AssetSpec(
            ["raw", "ingest_batches"], group_name="ingestion", description="One row per ingestion batch."
        ),
    ],
    name="raw_messages",
)
def raw_messages(context: dg.AssetExecutionContext, config: IngestConfig, warehouse: WarehouseResource):
    settings = load_settings()
    reports = []
    for path in config.paths:
        result = ingest.ingest_file(
            warehouse.url(),
            Path(path),
            fmt=config.fmt,
            max_text_bytes=config.max_text_bytes or settings.max_text_bytes,
        )
        context.log.info(f"{path}: {result.as_dict()}")
        reports.append(result.as_dict())
    with warehouse.connect() as conn:
        ingest.ensure_schema(conn)
        conn.commit()
        totals = report.warehouse_counts(conn)
    batch_meta = {"files_this_run": len(reports), **{f"this_run_{k}": sum(r[k] for r in reports) for k in
                  ("read", "loaded", "duplicate", "quarantined")}}  # fmt: skip
    yield dg.MaterializeResult(
        asset_key=["raw", "messages"],
        metadata={
            "messages": totals["messages"],
            "labelled_spam": totals["spam"],
            "labelled_ham": totals["ham"],
            **batch_meta,
        },
    )
    yield dg.MaterializeResult(
        asset_key=["raw", "ingest_batches"],
        metadata={"batches": totals["batches"], "quarantined_lines": totals["quarantined"], **batch_meta},
    )
