"""Jobs: the whole graph in one run."""

import dagster as dg

patas_pipeline = dg.define_asset_job(
    "patas_pipeline",
    selection=dg.AssetSelection.all(),
    description="Ingest (configured files), stage 1, drafting, shadow evaluation, lifecycle, exports, report.",
)
