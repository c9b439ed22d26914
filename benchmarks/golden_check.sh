#!/usr/bin/env bash
# Golden-output check: do two commits produce the same rules, metrics and exports?
#
#   benchmarks/golden_check.sh OLD_REV [NEW_REV] [DATA]
#
# Checks out each revision in a worktree under $TMPDIR (its own .venv, built by .ci/patas), runs
# `patas generate/ingest/run/rules export` there as a user would, on a fresh database of the server
# in GOLDEN_SERVER (default: the local Postgres on 127.0.0.1:5432), and compares the captures with
# benchmarks/golden_outputs.py (run ids and timestamps masked). DATA: a message file; default a
# generated 20k corpus (seed 7). GOLDEN_RUNS=2 runs `patas run` twice (the second with nothing new
# ingested) before capturing; GOLDEN_DB_PREFIX (default patas_golden) names the databases.
# Exit 0 when every file is the same.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
old="${1:?usage: golden_check.sh OLD_REV [NEW_REV] [DATA]}"; new="${2:-HEAD}"; data="${3:-}"
server="${GOLDEN_SERVER:-postgresql://postgres@127.0.0.1:5432/postgres}"
work="$(mktemp -d)"
trap 'git -C "$root" worktree remove --force "$work/old" >/dev/null 2>&1 || true; git -C "$root" worktree remove --force "$work/new" >/dev/null 2>&1 || true' EXIT
for side in old new; do
  rev="$old"; [ "$side" = new ] && rev="$new"
  git -C "$root" worktree add --detach "$work/$side" "$rev" >/dev/null
  "$work/$side/.ci/patas" --help >/dev/null
  "$root/.venv/bin/python" "$root/benchmarks/golden_outputs.py" --checkout "$work/$side" --server "$server" \
    --out "$work/capture_$side" --dbname "${GOLDEN_DB_PREFIX:-patas_golden}_$side" --runs "${GOLDEN_RUNS:-1}" ${data:+--data "$data"}
done
"$root/.venv/bin/python" "$root/benchmarks/golden_outputs.py" --compare "$work/capture_old" "$work/capture_new"
