"""Run figures: what a run saw, drafted, promoted, and how good the active rules are."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg

# The gates the lifecycle step checks on the evaluation (python_steps.quality.gates.EVALUATION_GATES;
# publish does not import quality): a critical one blocks promotion, not the whole run.
EVALUATION_GATES = ("evaluation_window", "active_precision")


def _exists(conn: psycopg.Connection, relation: str) -> bool:
    return conn.execute("select to_regclass(%s) is not null", (relation,)).fetchone()[0]


def warehouse_counts(conn: psycopg.Connection) -> dict[str, int]:
    row = conn.execute(
        """
        select m.*,
            (select count(*) from raw.ingest_batches),
            (select count(*) from raw.ingest_quarantine)
        from (
            select count(*), count(*) filter (where is_spam), count(*) filter (where not is_spam)
            from raw.messages
        ) as m
        """
    ).fetchone()  # one scan of the messages for the three counts
    return dict(zip(("messages", "spam", "ham", "batches", "quarantined"), row, strict=True))


def unbalanced_batches(conn: psycopg.Connection) -> list[int]:
    """Finished batches whose counts do not add up (read = loaded + duplicate + quarantined)."""
    rows = conn.execute(
        """
        select batch_id from raw.ingest_batches
        where status = 'done' and read_count <> loaded_count + duplicate_count + quarantined_count
        order by batch_id
        """
    ).fetchall()
    return [r[0] for r in rows]


def build_summary(conn: psycopg.Connection, run_id: str) -> dict:
    summary: dict = {"run_id": run_id}
    if _exists(conn, "raw.messages"):
        summary["warehouse"] = warehouse_counts(conn)
    if _exists(conn, "patas.runs"):
        row = conn.execute("select windows from patas.runs where run_id = %s", (run_id,)).fetchone()
        summary["windows"] = row[0] if row else None
    if _exists(conn, "intermediate.int_messages_windowed"):
        summary["window_messages"] = dict(
            conn.execute(
                "select window_name, count(*) from intermediate.int_messages_windowed group by 1 order by 1"
            ).fetchall()
        )
    if _exists(conn, "marts.stage1_candidates"):
        summary["stage1_candidates"] = conn.execute(
            "select count(*) from marts.stage1_candidates"
        ).fetchone()[0]
    if _exists(conn, "patas.stage2_runs"):
        row = conn.execute("select record from patas.stage2_runs where run_id = %s", (run_id,)).fetchone()
        if row:
            summary["stage2"] = row[0]
    if _exists(conn, "patas.llm_runs"):
        llm = llm_summary(conn, run_id)
        if llm:
            summary["llm"] = llm
    if _exists(conn, "patas.rule_drafts"):
        summary["rules_drafted"] = conn.execute(
            "select count(distinct rule_id) from patas.rule_drafts"
        ).fetchone()[0]
        summary["rules_new_this_run"] = conn.execute(
            "select count(distinct rule_id) from patas.rule_drafts where drafted_run_id = %s", (run_id,)
        ).fetchone()[0]
    if _exists(conn, "patas.run_step_states"):  # written by python_steps.mining.reuse
        rows = conn.execute(
            "select step, skipped, reason from patas.run_step_states where run_id = %s order by step",
            (run_id,),
        ).fetchall()
        if rows:
            summary["steps"] = {
                step: {"skipped": skipped, "reason": reason} for step, skipped, reason in rows
            }
    if _exists(conn, "patas.rule_lifecycle"):
        summary["rules_by_status"] = dict(
            conn.execute("select status, count(*) from patas.rule_lifecycle group by 1 order by 1").fetchall()
        )
    if _exists(conn, "patas.rule_audit"):
        summary["transitions_this_run"] = dict(
            conn.execute(
                "select coalesce(from_status, 'new') || '->' || coalesce(to_status, from_status), count(*)"
                " from patas.rule_audit"
                " where run_id = %s group by 1 order by 1",
                (run_id,),
            ).fetchall()
        )
        summary["deprecated_this_run"] = dict(
            conn.execute(
                "select rule_id, reason from patas.rule_audit where run_id = %s and to_status = 'deprecated'"
                " order by rule_id",
                (run_id,),
            ).fetchall()
        )
    if _exists(conn, "patas.quality_gate_results"):
        cur = conn.execute(
            "select batch_id, gate, severity, status, detail from patas.quality_gate_results"
            " where run_id = %s order by batch_id, gate",
            (run_id,),
        )
        summary["quality_gates"] = [
            dict(zip(("batch_id", "gate", "severity", "status", "detail"), r, strict=True)) for r in cur
        ]
    if _exists(conn, "patas.label_feedback"):
        summary["label_feedback"] = dict(
            conn.execute(
                "select verdict, count(*) from patas.label_feedback group by 1 order by 1"
            ).fetchall()
        )
    if _exists(conn, "marts.ruleset_evaluation"):
        cur = conn.execute("select * from marts.ruleset_evaluation order by 1, 2")
        cols = [d.name for d in cur.description]
        summary["rulesets"] = [
            {
                c: (float(v) if hasattr(v, "as_integer_ratio") and not isinstance(v, int) else v)
                for c, v in zip(cols, r, strict=True)
            }
            for r in cur.fetchall()
        ]
    summary["figures"] = _figures(conn, run_id)
    if _exists(conn, "marts.active_rules"):
        cur = conn.execute(
            "select rule_id, description, tier from marts.active_rules order by rule_id limit 10"
        )
        summary["active_rules_preview"] = [
            dict(zip(("rule_id", "description", "tier"), r, strict=True)) for r in cur
        ]
    return summary


def llm_summary(conn: psycopg.Connection, run_id: str) -> dict | None:
    """What the run's LLM drafting spent, under which privacy mode, against which budget."""
    cur = conn.execute(
        """
        select model, privacy, prompt_version, prompt_tokens, completion_tokens, cost_usd, priced, budget_usd,
               budget_tokens, budget_state, calls, retries, warnings
        from patas.llm_runs where run_id = %s
        """,
        (run_id,),
    )
    row = cur.fetchone()
    if row is None:
        return None
    out = dict(zip([d.name for d in cur.description], row, strict=True))
    money = out["priced"] and out["budget_usd"]
    out["budget_used"] = (
        out["cost_usd"] / out["budget_usd"] if money else
        (out["prompt_tokens"] + out["completion_tokens"]) / out["budget_tokens"] if out["budget_tokens"] else None
    )  # fmt: skip
    return out


def _llm_lines(llm: dict) -> list[str]:
    calls = ", ".join(f"{k} {v}" for k, v in sorted((llm.get("calls") or {}).items())) or "none"
    cost = f"${llm['cost_usd']:.4f}" if llm.get("priced") else "cost not counted (model unpriced)"
    budget = f" of ${llm['budget_usd']:.2f} budget" if llm.get("priced") and llm.get("budget_usd") else ""
    lines = [
        f"llm:             {llm['model']}, privacy {llm['privacy']}, prompt {llm['prompt_version']}: calls {calls};"
        f" {llm['prompt_tokens'] + llm['completion_tokens']:,} tokens ({llm['prompt_tokens']:,} prompt +"
        f" {llm['completion_tokens']:,} completion), {cost}{budget}"
        + (f"; {llm['retries']} retries" if llm.get("retries") else "")
    ]
    lines.extend(f"warning:         {w}" for w in llm.get("warnings") or [])
    return lines


def _figures(conn: psycopg.Connection, run_id: str) -> dict:
    """The data behind the HTML report's plots (html_report.render_html draws them)."""
    figures: dict = {}
    if _exists(conn, "marts.rule_evaluations") and _exists(conn, "patas.rule_lifecycle"):
        figures["rules"] = [
            list(r)
            for r in conn.execute(
                """
                select e.rule_id, e.recall, e.precision, coalesce(l.status, 'candidate')
                from marts.rule_evaluations as e
                left join patas.rule_lifecycle as l on l.rule_id = e.rule_id
                where e.window_name = 'evaluation'
                order by e.rule_id
                limit 5000
                """
            )
        ]
    if _exists(conn, "patas.rule_audit"):
        figures["promoted"] = [
            list(r)
            for r in conn.execute(
                "select rule_id, reason from patas.rule_audit where run_id = %s and to_status = 'active'"
                " order by rule_id",
                (run_id,),
            )
        ]
    if _exists(conn, "patas.batch_profiles"):
        figures["batches"] = [
            [r[0], r[1], r[2]]
            for r in conn.execute(
                "select batch_id, loaded_count, spam_share from patas.batch_profiles where loaded_count > 0"
                " order by batch_id desc limit 200"
            )
        ][::-1]
    return figures


def _runs_over_time(out_dir: Path, summary: dict) -> list[list]:
    """[run number, active rules, active-set precision, run seconds] from the earlier reports and this one."""
    reports = []
    for path in out_dir.glob("run_*.json"):
        if path.name == f"run_{summary['run_id']}.json":
            continue
        try:
            reports.append((path.stat().st_mtime, json.loads(path.read_text())))
        except (OSError, ValueError):
            continue
    reports.sort(key=lambda t: t[0])
    out = []
    for i, s in enumerate([r for _, r in reports[-49:]] + [summary], start=1):
        active = next(
            (rs for rs in s.get("rulesets") or []
             if rs.get("ruleset_name") == "active" and rs.get("window_name", "evaluation") == "evaluation"),
            {},
        )  # fmt: skip
        out.append(
            [
                i,
                (s.get("rules_by_status") or {}).get("active", 0),
                active.get("precision"),
                s.get("run_seconds"),
            ]
        )
    return out


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)


def _stage2_lines(st: dict) -> list[str]:
    if st.get("method") == "off":
        return ["stage 2:         off (stage 1 only)"]
    emb = st.get("embeddings") or {}
    lines = [
        f"stage 2:         {st.get('stage2_messages', 0):,} messages ({100 * st.get('stage2_share', 0):.2f}% of the"
        f" mining window; slice {st.get('slice_percent')}% + uncovered spam, sample <= {st.get('sample_size')}),"
        f" {st.get('clusters', 0)} clusters ({st.get('method')}, {st.get('known_clusters_matched', 0)} known)",
    ]
    if emb:
        lines.append(
            f"embeddings:      {emb.get('provider')} / {emb.get('model')}: {emb.get('calls', 0)} calls,"
            f" {emb.get('cache_hits', 0)} cache hits"
        )
    matches = st.get("library_matches") or []
    if matches:
        lines.append(
            f"pattern library: {len(matches)} rule(s) re-used from {len({m['pattern_id'] for m in matches})}"
            " known pattern(s) (a returning campaign's rules, re-checked)"
        )
    lines.extend(f"warning:         {w}" for w in st.get("warnings", []))
    return lines


def render_summary(summary: dict) -> str:
    lines = ["PATAS run summary", "================="]
    if summary.get("nothing_new"):
        lines.append(
            f"nothing new:     the warehouse, settings and code are as run {summary['nothing_new']['since_run']}"
            " left them: no step ran, its results stand (patas run --force runs the graph)"
        )
    wh = summary.get("warehouse") or {}
    if wh:
        lines.append(
            f"messages:        {wh['messages']:,} (spam {wh['spam']:,}, ham {wh['ham']:,}); quarantined lines {wh['quarantined']:,}"
        )
    if summary.get("windows"):
        w = summary["windows"]
        if w.get("split_mode") == "time":
            lines.append(f"mining window:   [{w['mining_start']}, {w['mining_end']})")
            lines.append(f"evaluation:      [{w['evaluation_start']}, {w['evaluation_end']})")
        else:
            lines.append(
                f"split:           hash on template signature, {w.get('evaluation_share')}% held out"
            )
    if summary.get("window_messages"):
        lines.append(
            "window sizes:    " + ", ".join(f"{k} {v:,}" for k, v in summary["window_messages"].items())
        )
    if summary.get("stage2"):
        lines.extend(_stage2_lines(summary["stage2"]))
    if summary.get("llm"):
        lines.extend(_llm_lines(summary["llm"]))
    for key, label in (
        ("stage1_candidates", "stage-1 signals"),
        ("rules_drafted", "rules drafted"),
        ("rules_new_this_run", "new this run"),
    ):
        if key in summary:
            lines.append(f"{label + ':':<17}{summary[key]:,}")
    for step, how in (summary.get("steps") or {}).items():
        verb = "skipped, earlier result re-used" if how["skipped"] else "computed"
        lines.append(f"{(step.replace('_', ' ') + ':').ljust(16)} {verb} ({how['reason']})")
    if summary.get("rules_by_status"):
        lines.append(
            "rules by status: " + ", ".join(f"{k} {v}" for k, v in summary["rules_by_status"].items())
        )
    if summary.get("transitions_this_run"):
        lines.append(
            "transitions:     " + ", ".join(f"{k} {v}" for k, v in summary["transitions_this_run"].items())
        )
    for rid, reason in list((summary.get("deprecated_this_run") or {}).items())[:10]:
        lines.append(f"deprecated:      {rid}  {reason}")
    lines.extend(render_quality_gates(summary.get("quality_gates") or []))
    if summary.get("label_feedback"):
        lines.append(
            "label feedback:  " + ", ".join(f"{k} {v:,}" for k, v in summary["label_feedback"].items())
        )
    for rs in summary.get("rulesets", []):
        name = rs.get("ruleset") or rs.get("ruleset_name") or "?"
        figures = ", ".join(
            f"{k} {_fmt(rs[k])}"
            for k in ("rule_count", "precision", "recall", "false_positive_rate", "f1")
            if k in rs
        )
        window = f" ({rs['window_name']} window)" if rs.get("window_name") else ""
        lines.append(f"ruleset {name}{window}: {figures}")
    if summary.get("active_rules_preview"):
        lines.append("active rules (first 10):")
        lines.extend(
            f"  {r['rule_id']}  [{r['tier']}]  {r['description']}" for r in summary["active_rules_preview"]
        )
    if "run_seconds" in summary:
        lines.append(f"run time:        {summary['run_seconds']} s (run {summary.get('run_id')})")
    if summary.get("stage_seconds"):
        lines.append(
            "stage times:     " + ", ".join(f"{k} {v:.1f} s" for k, v in summary["stage_seconds"].items())
        )
    if summary.get("report_file"):
        html = str(summary["report_file"]).removesuffix(".json") + ".html"
        lines.append(f"run report:      {html} (figures; JSON beside it)")
    if summary.get("log_file"):
        lines.append(f"full log:        {summary['log_file']}")
    if summary.get("failures"):
        lines.append("FAILED steps:")
        lines.extend(f"  {f}" for f in summary["failures"])
    return "\n".join(lines)


def render_quality_gates(results: list[dict]) -> list[str]:
    """The data-quality gates' lines of the summary: counts, then every failed gate."""
    if not results:
        return []
    counts: dict[str, int] = {}
    for r in results:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    lines = [
        f"quality gates:   batch {results[0]['batch_id']}: "
        + ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
    ]
    critical = [r for r in results if r["status"] == "failed" and r["severity"] == "critical"]
    for r in results:
        if r["status"] == "failed":
            lines.append(f"  {r['severity'].upper()} {r['gate']}: {r['detail']}")
    if any(r["gate"] not in EVALUATION_GATES for r in critical):
        lines.append(
            "BLOCKED:         a critical data-quality gate failed: nothing downstream ran, no rule was"
            " promoted or deprecated (patas.quality_gate_results; thresholds in quality_gates.toml)"
        )
    elif critical:
        lines.append(
            "BLOCKED:         a critical evaluation gate failed: no rule was promoted or deprecated, the"
            " active set is unchanged (patas.quality_gate_results; thresholds in quality_gates.toml)"
        )
    return lines


def write_report(summary: dict, out_dir: Path) -> Path:
    """Write ``run_<id>.json`` and its HTML page ``run_<id>.html`` (plus ``latest.json`` and
    ``latest.html``); returns the JSON path."""
    from python_steps.publish.html_report import render_html

    out_dir.mkdir(parents=True, exist_ok=True)
    summary.setdefault("figures", {})["runs"] = _runs_over_time(out_dir, summary)
    # great-expectations' validation pages of this run's gates (python_steps.quality.gates.write_data_docs).
    docs = out_dir / "data_docs" / f"run_{summary['run_id']}"
    summary["data_docs"] = [str(p.relative_to(out_dir)) for p in sorted(docs.glob("*.html"))]
    path = out_dir / f"run_{summary['run_id']}.json"
    path.write_text(json.dumps(summary, indent=2, sort_keys=True, default=str))
    (out_dir / "latest.json").write_text(path.read_text())
    html = render_html(summary, render_summary(summary))
    path.with_suffix(".html").write_text(html, encoding="utf-8")
    (out_dir / "latest.html").write_text(html, encoding="utf-8")
    return path
