"""The heavy stage-1 models build without JIT compilation.

Their statements are regex and text work over every message, far above Postgres's JIT cost
thresholds, so with JIT on each plan compiled hundreds of expressions in the leader and in every
parallel worker before any row was read: at 1M messages 10-12.5 s of the signal extraction's
25 s, 5 s of signal_label_counts (docs/benchmarks.md). The setting is ``set local``: it ends with
the model's transaction, so it never reaches the next node dbt runs on the same connection.
"""

from __future__ import annotations

import json

from patas.manifest import ensure_manifest
from python_steps.settings import dbt_env

HEAVY_STAGE1_MODELS = (
    "int_messages_normalized",
    "int_message_signals_extracted",
    "int_messages_enriched",
    "signal_label_counts",
    "stage1_uncovered_spam",
)


def test_heavy_stage1_models_turn_jit_off_inside_their_transaction(server_url: str) -> None:
    manifest = json.loads(ensure_manifest(dbt_env(server_url)).read_text())
    for name in HEAVY_STAGE1_MODELS:
        hooks = manifest["nodes"][f"model.patas.{name}"]["config"]["pre-hook"]
        jit = [h for h in hooks if h["sql"].strip() == "set local jit = off"]
        assert jit, f"{name}: no 'set local jit = off' pre-hook in {[h['sql'] for h in hooks]}"
        assert all(h["transaction"] for h in jit), f"{name}: the jit setting must run inside the transaction"
