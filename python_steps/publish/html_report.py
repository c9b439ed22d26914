"""The run report as one self-contained HTML page: figures as inline SVG, no script, no network.

:func:`render_html` reads only the run summary (``report.build_summary`` puts the figures' data
under ``figures``), so the page can be rebuilt from the JSON report. Every text from the warehouse
(rule descriptions, reasons, gate details) is HTML-escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from python_steps.publish.report import EVALUATION_GATES

W, H, PAD = 520, 300, 44


def _num(v: object, digits: int = 4) -> str:
    return f"{v:.{digits}f}" if isinstance(v, float) else escape(str(v))


def _axes(
    x_label: str, y_label: str, x_ticks: Sequence[tuple[float, str]], y_ticks: Sequence[tuple[float, str]]
) -> str:
    parts = [
        f'<line x1="{PAD}" y1="{H - PAD}" x2="{W - 10}" y2="{H - PAD}" stroke="#333"/>',
        f'<line x1="{PAD}" y1="10" x2="{PAD}" y2="{H - PAD}" stroke="#333"/>',
        f'<text x="{(W + PAD) / 2}" y="{H - 6}" text-anchor="middle" font-size="12">{escape(x_label)}</text>',
        f'<text x="12" y="{(H - PAD) / 2}" font-size="12" transform="rotate(-90 12 {(H - PAD) / 2})"'
        f' text-anchor="middle">{escape(y_label)}</text>',
    ]
    for x, label in x_ticks:
        parts.append(
            f'<text x="{x:.1f}" y="{H - PAD + 16}" font-size="10" text-anchor="middle">{escape(label)}</text>'
        )
    for y, label in y_ticks:
        parts.append(
            f'<text x="{PAD - 4}" y="{y + 3:.1f}" font-size="10" text-anchor="end">{escape(label)}</text>'
        )
    return "".join(parts)


def _sx(v: float, lo: float, hi: float) -> float:
    return PAD + (v - lo) / ((hi - lo) or 1.0) * (W - 10 - PAD)


def _sy(v: float, lo: float, hi: float) -> float:
    return H - PAD - (v - lo) / ((hi - lo) or 1.0) * (H - PAD - 10)


def _svg(title: str, body: str) -> str:
    return (
        f'<figure><svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" role="img"'
        f' aria-label="{escape(title)}">{body}</svg><figcaption>{escape(title)}</figcaption></figure>'
    )


def precision_recall_plot(rules: Sequence[Sequence]) -> str:
    """One dot per evaluated rule: recall (x) against precision (y); active rules in red."""
    pts = [(float(r[1]), float(r[2]), r[3]) for r in rules if r[1] is not None and r[2] is not None]
    if not pts:
        return "<p>No rule has labelled hits on the evaluation window.</p>"
    x_hi = max(0.05, max(x for x, _, _ in pts))
    ticks = [(_sx(x_hi * i / 4, 0, x_hi), f"{x_hi * i / 4:.2f}") for i in range(5)]
    yt = [(_sy(v / 4, 0, 1), f"{v / 4:.2f}") for v in range(5)]
    dots = "".join(
        f'<circle cx="{_sx(x, 0, x_hi):.1f}" cy="{_sy(y, 0, 1):.1f}" r="{3.5 if st == "active" else 2.5}"'
        f' fill="{"#c0392b" if st == "active" else "#7f8c8d"}" fill-opacity="0.7"/>'
        for x, y, st in sorted(pts, key=lambda p: p[2] == "active")
    )
    legend = (
        f'<circle cx="{W - 120}" cy="20" r="4" fill="#c0392b"/><text x="{W - 112}" y="24" font-size="11">active</text>'
        f'<circle cx="{W - 60}" cy="20" r="3" fill="#7f8c8d"/><text x="{W - 52}" y="24" font-size="11">other</text>'
    )
    return _svg(
        f"Precision against recall per rule, evaluation window ({len(pts)} rules)",
        _axes("recall", "precision", ticks, yt) + dots + legend,
    )


def bar_plot(title: str, items: Sequence[tuple[str, float]], unit: str) -> str:
    if not items:
        return ""
    hi = max(v for _, v in items) or 1.0
    row = (H - 20) / max(len(items), 1)
    bars = []
    for i, (label, v) in enumerate(items):
        width = v / hi * (W - 200)
        y = 10 + i * row
        bars.append(
            f'<text x="150" y="{y + row * 0.6:.1f}" font-size="11" text-anchor="end">{escape(label)}</text>'
            f'<rect x="156" y="{y + 2:.1f}" width="{width:.1f}" height="{max(row - 6, 2):.1f}" fill="#2980b9"/>'
            f'<text x="{160 + width:.1f}" y="{y + row * 0.6:.1f}" font-size="10">{v:g} {escape(unit)}</text>'
        )
    return _svg(title, "".join(bars))


def line_plot(
    title: str, x_label: str, series: Sequence[tuple[str, str, Sequence[tuple[float, float]]]]
) -> str:
    """Several series, each scaled to its own range (label says the range), on one x axis."""
    xs = [x for _, _, pts in series for x, _ in pts]
    if not xs:
        return ""
    x_lo, x_hi = min(xs), max(xs)
    body = []
    for i, (name, colour, pts) in enumerate(series):
        if not pts:
            continue
        ys = [y for _, y in pts]
        lo, hi = min(0.0, min(ys)), max(ys) or 1.0
        path = " ".join(f"{_sx(x, x_lo, x_hi):.1f},{_sy(y, lo, hi):.1f}" for x, y in pts)
        body.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        body.extend(
            f'<circle cx="{_sx(x, x_lo, x_hi):.1f}" cy="{_sy(y, lo, hi):.1f}" r="2.5" fill="{colour}"/>'
            for x, y in pts
        )
        body.append(
            f'<text x="{PAD + 8}" y="{22 + i * 14}" font-size="11" fill="{colour}">{escape(name)}'
            f" (0 – {hi:.4g})</text>"
        )
    ticks = [(_sx(x, x_lo, x_hi), f"{x:g}") for x in sorted(set(xs))[:: max(1, len(set(xs)) // 8)]]
    return _svg(title, _axes(x_label, "scaled to each series' range", ticks, []) + "".join(body))


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_num(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.9em}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}
.blocked{background:#fdecea;border:1px solid #c0392b;padding:.6em}.ok{color:#1e8449}.bad{color:#c0392b}
figure{display:inline-block;margin:.5em 1em .5em 0}figcaption{font-size:.85em;color:#555}
pre{background:#f6f6f6;padding:.8em;overflow:auto}
"""


def render_html(summary: dict, text_summary: str) -> str:
    """The whole page: status, counts, gates, transitions with reasons, figures, the text summary."""
    figures = summary.get("figures") or {}
    ok = summary.get("success", True)
    gates = summary.get("quality_gates") or []
    critical = [g for g in gates if g["status"] == "failed" and g["severity"] == "critical"]
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>PATAS run {escape(str(summary.get('run_id')))}</title><style>{CSS}</style></head><body>",
        f"<h1>PATAS run <code>{escape(str(summary.get('run_id')))}</code></h1>",
        f"<p class='{'ok' if ok else 'bad'}'><b>{'succeeded' if ok else 'FAILED'}</b>"
        + (f" in {summary['run_seconds']} s" if "run_seconds" in summary else "")
        + "</p>",
    ]
    if any(g["gate"] not in EVALUATION_GATES for g in critical):
        parts.append(
            "<p class='blocked'><b>Blocked by a critical data-quality gate</b>: nothing downstream of the batch ran,"
            " no rule was promoted or deprecated.</p>"
        )
    elif critical:
        parts.append(
            "<p class='blocked'><b>Blocked by a critical evaluation gate</b>: no rule was promoted or deprecated,"
            " the active set is unchanged: "
            + escape("; ".join(f"{g['gate']}: {g['detail']}" for g in critical))
            + "</p>"
        )
    wh = summary.get("warehouse") or {}
    counts = [("messages", wh.get("messages")), ("spam", wh.get("spam")), ("ham", wh.get("ham")),
              ("quarantined lines", wh.get("quarantined")), ("rules drafted", summary.get("rules_drafted")),
              ("new this run", summary.get("rules_new_this_run"))]  # fmt: skip
    counts += [(f"rules {k}", v) for k, v in (summary.get("rules_by_status") or {}).items()]
    parts.append("<h2>Counts</h2>" + _table(["what", "count"], [(k, v) for k, v in counts if v is not None]))
    if gates:
        parts.append(
            "<h2>Data-quality gates</h2>"
            + _table(
                ["batch", "gate", "severity", "status", "detail"],
                [(g["batch_id"], g["gate"], g["severity"], g["status"], g["detail"]) for g in gates],
            )
        )
    docs = summary.get("data_docs") or []
    if docs:
        parts.append(
            "<p>great-expectations validation results (data docs): "
            + ", ".join(
                f"<a href='{escape(d)}'>{escape(d.rsplit('/', 1)[-1].removesuffix('.html'))}</a>"
                for d in docs
            )
            + "</p>"
        )
    llm = summary.get("llm")
    if llm:
        parts.append("<h2>LLM drafting</h2>")
        parts.extend(
            f"<p class='{'blocked' if llm.get('budget_state') == 'reached' else 'bad'}'><b>Warning</b>: {escape(w)}</p>"
            for w in llm.get("warnings") or []
        )
        used = llm.get("budget_used")
        parts.append(
            _table(
                ["model", "privacy", "prompt", "calls", "prompt tokens", "completion tokens", "cost (USD)",
                 "budget (USD)", "budget used", "retries"],
                [(llm["model"], llm["privacy"], llm["prompt_version"],
                  ", ".join(f"{k} {v}" for k, v in sorted((llm.get("calls") or {}).items())),
                  llm["prompt_tokens"], llm["completion_tokens"],
                  llm["cost_usd"] if llm.get("priced") else "unpriced",
                  "" if llm.get("budget_usd") is None else llm["budget_usd"],
                  f"{100 * used:.0f}%" if used is not None else "", llm.get("retries", 0))],
            )
        )  # fmt: skip
    promoted = figures.get("promoted") or []
    deprecated = summary.get("deprecated_this_run") or {}
    parts.append("<h2>Rules promoted and deprecated this run</h2>")
    if promoted or deprecated:
        parts.append(
            _table(
                ["rule", "to", "reason"],
                [(r, "active", why) for r, why in promoted]
                + [(r, "deprecated", why) for r, why in deprecated.items()],
            )
        )
    else:
        parts.append("<p>No rule changed status this run.</p>")
    rulesets = summary.get("rulesets") or []
    if rulesets:
        cols = ["ruleset_name", "window_name", "rule_count", "precision", "recall", "false_positive_rate"]
        parts.append(
            "<h2>Rulesets</h2><p>The active set and, for each safety profile, the set it would make active."
            " Profiles that pick the same rules show the same figures.</p>"
            + _table(cols, [[rs.get(c) for c in cols] for rs in rulesets])
        )
    parts.append("<h2>Figures</h2>")
    parts.append(precision_recall_plot(figures.get("rules") or []))
    stages = sorted((summary.get("stage_seconds") or {}).items(), key=lambda kv: -kv[1])
    parts.append(bar_plot("Stage times, this run", stages, "s"))
    runs = figures.get("runs") or []
    parts.append(
        line_plot(
            "Active rules and ruleset precision over runs",
            "run",
            [
                ("active rules", "#c0392b", [(r[0], r[1]) for r in runs]),
                (
                    "active-set precision (evaluation)",
                    "#2980b9",
                    [(r[0], r[2]) for r in runs if r[2] is not None],
                ),
            ],
        )
    )
    batches = figures.get("batches") or []
    parts.append(
        line_plot(
            "Batch volume and spam share over batches",
            "batch",
            [
                ("rows loaded", "#8e44ad", [(b[0], b[1]) for b in batches]),
                ("spam share", "#d35400", [(b[0], b[2]) for b in batches if b[2] is not None]),
            ],
        )
    )
    parts.append(f"<h2>Text summary</h2><pre>{escape(text_summary)}</pre></body></html>")
    return "\n".join(p for p in parts if p)
