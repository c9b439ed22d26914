#!/usr/bin/env bash
# Speed of two revisions, back to back on the same machine: `patas bench speed` and a run's fixed cost.
#
#   benchmarks/compare_speed.sh OLD_REV [NEW_REV] [ROWS] [ROUNDS]
#
# Checks out each revision in a worktree under $TMPDIR (its own .venv, built by .ci/patas) and, for
# each round, alternates old then new:
#   1. `patas bench speed --rows ROWS --seed 42` (stage by stage, then end to end through Dagster);
#   2. the fixed cost of a run: on a fresh database, `patas ingest` of the same corpus, `patas run`
#      (timed: first run), then `patas run` again with nothing new ingested (timed: the fixed cost).
# Timings are the commands' wall time, as a user sees them (process start-up included). Output:
# $OUT (default benchmarks/results/compare_<ROWS>) holds each side's JSON and summary.json, which
# gives every figure per revision and round, and the new/old ratios of the medians.
# Server: COMPARE_SERVER (default the local Postgres on 127.0.0.1:5432); databases are dropped after.
# On a shared server: COMPARE_DB_PREFIX (default patas_cmp) names the fixed-cost databases, and
# COMPARE_BENCH=0 leaves out step 1 (`patas bench speed` names its own databases, and an old
# revision may not name them after the settings' database).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
old="${1:?usage: compare_speed.sh OLD_REV [NEW_REV] [ROWS] [ROUNDS]}"; new="${2:-HEAD}"
rows="${3:-100000}"; rounds="${4:-1}"
server="${COMPARE_SERVER:-postgresql://postgres@127.0.0.1:5432/postgres}"
out="${OUT:-$root/benchmarks/results/compare_${rows}}"
work="$(mktemp -d)"
mkdir -p "$out"
trap 'for s in old new; do git -C "$root" worktree remove --force "$work/$s" >/dev/null 2>&1 || true; done' EXIT
for side in old new; do
  rev="$old"; [ "$side" = new ] && rev="$new"
  git -C "$root" worktree add --detach "$work/$side" "$rev" >/dev/null
  "$work/$side/.ci/patas" --help >/dev/null
  git -C "$work/$side" rev-parse HEAD > "$out/${side}_commit"
done
corpus="$work/corpus_${rows}.jsonl"
"$work/new/.ci/patas" generate --rows "$rows" --seed 42 --out "$corpus" >/dev/null
db_url() { echo "${server%/*}/$1"; }
psql_admin() { "$root/.venv/bin/python" -c "import sys, psycopg; c = psycopg.connect(sys.argv[1], autocommit=True); c.execute(sys.argv[2])" "$server" "$1"; }
now() { date +%s.%N; }
prefix="${COMPARE_DB_PREFIX:-patas_cmp}"; bench="${COMPARE_BENCH:-1}"
for round in $(seq 1 "$rounds"); do
  for side in old new; do
    ck="$work/$side"
    [ "$bench" = 0 ] || (cd "$ck" && PATAS_DATABASE_URL="$server" PATAS_HOME="$work/bench_home" \
      .venv/bin/patas bench speed --rows "$rows" --seed 42 \
      --statement-timeout 300 --out "$out/${side}_speed_r${round}.json" >/dev/null)
    db="${prefix}_${side}_${round}"
    psql_admin "drop database if exists $db with (force)"; psql_admin "create database $db template template0 encoding 'UTF8'"
    home="$work/home_${side}_${round}"
    export PATAS_DATABASE_URL="$(db_url "$db")" PATAS_HOME="$home"
    (cd "$ck" && .venv/bin/patas ingest "$corpus" >/dev/null)
    t0=$(now); (cd "$ck" && .venv/bin/patas run >"$out/${side}_run1_r${round}.txt" 2>&1); t1=$(now)
    (cd "$ck" && .venv/bin/patas run >"$out/${side}_run2_r${round}.txt" 2>&1); t2=$(now)
    unset PATAS_DATABASE_URL PATAS_HOME
    psql_admin "drop database if exists $db with (force)"
    python3 -c "import json,sys; json.dump({'first_run_s': round($t1-$t0, 2), 'fixed_cost_s': round($t2-$t1, 2)}, open(sys.argv[1], 'w'))" \
      "$out/${side}_fixed_r${round}.json"
    echo "round $round $side: $(cat "$out/${side}_fixed_r${round}.json")" >&2
  done
done
python3 - "$out" "$rounds" <<'EOF'
import json, statistics, sys
from pathlib import Path
out, rounds = Path(sys.argv[1]), int(sys.argv[2])
keys = ["ingest_s", "stage1_s", "stage2_s", "drafting_s", "shadow_eval_s", "promotion_s", "end_to_end_s", "dbt_noop_s"]
summary = {"commits": {s: (out / f"{s}_commit").read_text().strip() for s in ("old", "new")}, "rounds": {}}
for side in ("old", "new"):
    per = []
    for r in range(1, rounds + 1):
        path = out / f"{side}_speed_r{r}.json"
        speed = json.loads(path.read_text()) if path.exists() else {}
        fig = {k: speed.get(k) for k in keys}
        fig.update(json.loads((out / f"{side}_fixed_r{r}.json").read_text()))
        per.append(fig)
    summary["rounds"][side] = per
med = {s: {k: statistics.median([p[k] for p in summary["rounds"][s] if p.get(k) is not None] or [0])
           for k in summary["rounds"][s][0]} for s in ("old", "new")}
summary["median"] = med
summary["new_over_old"] = {k: round(med["new"][k] / med["old"][k], 3) if med["old"][k] else None for k in med["old"]}
(out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
print(json.dumps({"median": med, "new_over_old": summary["new_over_old"]}, indent=2))
EOF
