"""Ingestion: files -> raw.messages (python_steps.ingest.load does the work)."""

from pathlib import Path

import dagster as dg

from patas_dagster.assets.dbt import PYTHON_TABLE_KINDS
from patas_dagster.resources import RunSpecResource, WarehouseResource
from python_steps.ingest import load as ingest
from python_steps.publish import report
from python_steps.settings import load_settings


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            ["raw", "messages"],
            group_name="ingestion",
            kinds=PYTHON_TABLE_KINDS,
            description=(
                "One row per distinct message, loaded from the run's files (patas ingest, the inbox "
                "sensor: $PATAS_HOME/inbox). Where every lineage starts."
            ),
        ),
        dg.AssetSpec(
            ["raw", "ingest_batches"],
            group_name="ingestion",
            kinds=PYTHON_TABLE_KINDS,
            description="One row per ingestion batch (file): read = loaded + duplicate + quarantined.",
        ),
        dg.AssetSpec(
            ["raw", "ingest_quarantine"],
            group_name="ingestion",
            kinds=PYTHON_TABLE_KINDS,
            description="One row per input line ingest could not load, with the reason and its exact bytes.",
        ),
    ],
    name="raw_messages",
)
def raw_messages(context: dg.AssetExecutionContext, warehouse: WarehouseResource, run_spec: RunSpecResource):
    """Loads the run's ``ingest_paths`` (none: no new files, the asset reports what is there)."""
    settings = load_settings()
    reports = []
    for path in run_spec.spec().ingest_paths:
        result = ingest.ingest_file(
            warehouse.url(),
            Path(path),
            max_text_bytes=settings.max_text_bytes,
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
    yield dg.MaterializeResult(
        asset_key=["raw", "ingest_quarantine"], metadata={"quarantined_lines": totals["quarantined"]}
    )
