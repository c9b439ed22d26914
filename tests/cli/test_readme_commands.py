"""Every command the README tells a user to type, typed as a user types it: a real ``patas`` process,
a real Postgres, assertions on output and exit code.

One module-scoped warehouse: the README's first command (``.ci/patas demo``) fills it, and the
commands a user types next run against it, in README order.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from patas.bench.harness import fresh_database

REPO = Path(__file__).resolve().parents[2]
PATAS = str(Path(sys.executable).parent / "patas")
README = (REPO / "README.md").read_text()


class User:
    """Runs commands in a shell-like way: one environment (the user's warehouse and PATAS_HOME)."""

    def __init__(self, env: dict[str, str], cwd: Path):
        self.env, self.cwd = env, cwd

    def __call__(self, *args: str, ok: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
        cmd = [PATAS, *args] if args[0] != ".ci/patas" else [str(REPO / ".ci" / "patas"), *args[1:]]
        res = subprocess.run(cmd, env=self.env, cwd=self.cwd, capture_output=True, text=True, timeout=timeout)
        if ok:
            assert res.returncode == 0, (
                f"{' '.join(args)} -> {res.returncode}\n{res.stdout[-2000:]}\n{res.stderr[-3000:]}"
            )
        assert "Traceback" not in res.stderr, res.stderr[-3000:]
        return res


@pytest.fixture(scope="module")
def user(server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[User]:
    home = tmp_path_factory.mktemp("patas_home")
    with fresh_database(server_url, f"patas_cli_{os.getpid()}") as url:
        env = {
            **os.environ,
            "PATAS_DATABASE_URL": url,
            "PATAS_HOME": str(home),
            "DAGSTER_HOME": str(home / "dagster"),
        }
        env.pop("PATAS_PROFILE", None)
        yield User(env, home)


@pytest.fixture(scope="module")
def demo(user: User) -> subprocess.CompletedProcess:
    assert ".ci/patas demo" in README
    return user(".ci/patas", "demo")


def test_demo_reads_like_a_product(user: User, demo: subprocess.CompletedProcess):
    err, out = demo.stderr, demo.stdout
    for step in ("[1/4] warehouse ready", "[2/4] corpus", "[3/4] ingest: read 20,000 = loaded", "[4/4]"):
        assert step in err, err
    for stage in ("stage 1", "drafting", "shadow evaluation", "promotion", "exports"):
        assert re.search(rf"^  {re.escape(stage)}\s+done in \d+\.\d s$", err, re.M), (stage, err)
    assert "Running with dbt" not in out + err, "dbt's log belongs in the log file"
    assert "rules by status:" in out and "active" in out
    log = re.search(r"full log:\s+(\S+)", out).group(1)
    assert "Running with dbt" in Path(log).read_text()
    assert "patas rules list --status active" in out
    html = Path(re.search(r"run report:\s+(\S+\.html)", out).group(1))
    assert html.parent == Path(user.env["PATAS_HOME"]) / "reports" and "<svg" in html.read_text()
    assert "$PATAS_HOME/reports/run_<id>.html" in README


def test_rules_list_active(user: User, demo):
    assert "patas rules list --status active" in README
    res = user("rules", "list", "--status", "active")
    lines = res.stdout.splitlines()
    assert lines[0].split()[:3] == ["rule", "status", "tier"]
    assert len(lines) > 1 and all(" active " in line for line in lines[1:])
    limited = user("rules", "list", "--limit", "2").stdout.splitlines()
    assert len(limited) == 3


def _an_active_rule(user: User) -> str:
    rows = json.loads(user("rules", "list", "--status", "active", "--json").stdout)
    assert rows and all(r["status"] == "active" for r in rows)
    return rows[0]["rule_id"]


def test_rules_show_text_json_and_unknown_id(user: User, demo):
    import psycopg

    assert "patas rules show <id>" in README
    _an_active_rule(user)
    # Cross-fitted promotion can make a rule active on mining-window evidence alone (a campaign that
    # ended before the evaluation window): the card of one with held-out hits shows them.
    with psycopg.connect(user.env["PATAS_DATABASE_URL"]) as conn:
        rule_id = conn.execute(
            "select l.rule_id from patas.rule_lifecycle as l join marts.rule_evaluations as e using (rule_id)"
            " where l.status = 'active' and e.window_name = 'evaluation' and e.hit_count > 0 order by 1 limit 1"
        ).fetchone()[0]
    text = user("rules", "show", rule_id).stdout
    assert text.startswith(rule_id) and "status active" in text and "evaluation:" in text
    card = json.loads(user("rules", "show", rule_id, "--json").stdout)
    assert (
        card["rule_id"] == rule_id and card["status"] == "active" and card["latest_metrics"]["hit_count"] > 0
    )
    prefix = user("rules", "show", rule_id[:12], "--json").stdout
    assert json.loads(prefix)["rule_id"] == rule_id
    missing = user("rules", "show", "r_doesnotexist", ok=False)
    assert missing.returncode == 2
    assert missing.stderr.strip() == "error: no rule 'r_doesnotexist'"


def test_rules_card_shows_the_evidence(user: User, demo):
    rule_id = _an_active_rule(user)
    text = user("rules", "show", rule_id).stdout
    assert "evidence (" in text and "posterior precision" in text and "prior" in text
    card = json.loads(user("rules", "show", rule_id, "--json").stdout)
    e = card["evidence"]
    assert e["evidence_spam_hits"] > 0 and e["tier"] == "SAFE_AUTO" == card["tier"]
    assert 0 < e["posterior_lower_bound"] <= e["posterior_mean"] <= 1


def test_a_shadow_rules_card_says_why_it_is_not_active(user: User, demo):
    import psycopg

    with psycopg.connect(user.env["PATAS_DATABASE_URL"]) as conn:
        shadow = conn.execute(
            """
            select l.rule_id, e.held_reason from patas.rule_lifecycle as l
            inner join patas.rule_evidence as e using (rule_id)
            where l.status = 'shadow' and not l.is_pinned order by 1
            """
        ).fetchall()
    assert shadow, "the demo leaves no rule in shadow"
    assert all(why for _, why in shadow), [rid for rid, why in shadow if not why]
    rule_id, why = shadow[0]
    text = user("rules", "show", rule_id).stdout
    assert "status shadow" in text and f"not active: {why}" in text.splitlines()
    card = json.loads(user("rules", "show", rule_id, "--json").stdout)
    assert card["evidence"]["held_reason"] == why
    active = _an_active_rule(user)
    assert "not active:" not in user("rules", "show", active).stdout


def test_rules_review_list_approve_reject(user: User, demo):
    assert "patas rules review" in README
    assert 'patas rules review approve <id> --reason "checked the examples"' in README
    listing = user("rules", "review").stdout
    queue = json.loads(user("rules", "review", "--json").stdout)
    if not queue:
        assert listing.strip() == "no rules waiting for review"
        pytest.fail("the demo leaves no REVIEW_ONLY rule to review (its common words should wait here)")
    assert listing.splitlines()[0].split()[:3] == ["rule", "kind", "spam"]
    assert all(r["tier"] == "REVIEW_ONLY" for r in queue)
    first, second = queue[0]["rule_id"], queue[-1]["rule_id"]
    approved = json.loads(
        user("rules", "review", "approve", first, "--reason", "checked the examples").stdout
    )
    assert approved["status"] == "active" and approved["reason"] == "review_approved: checked the examples"
    if second != first:
        rejected = json.loads(user("rules", "review", "reject", second, "--reason", "too broad").stdout)
        assert rejected["status"] == "deprecated" and rejected["reason"].startswith("review_rejected")
    again = user("rules", "review", "approve", first, "--reason", "twice", ok=False)
    assert (
        again.returncode == 2
        and again.stderr.startswith("error: rule ")
        and "not waiting for review" in again.stderr
    )
    assert len(again.stderr.strip().splitlines()) == 1
    missing = user("rules", "review", "approve", "r_doesnotexist", "--reason", "x", ok=False)
    assert missing.returncode == 2 and missing.stderr.strip() == "error: unknown rule 'r_doesnotexist'"
    features = json.loads((user.cwd / "exports" / "features.json").read_text())
    assert features["format"] == "patas-features/1"


def test_no_single_common_word_is_safe_auto_in_the_demo(user: User, demo):
    import psycopg

    with psycopg.connect(user.env["PATAS_DATABASE_URL"]) as conn:
        kinds = dict(
            conn.execute(
                "select rule_kind, count(*) filter (where tier = 'SAFE_AUTO') from patas.rule_evidence group by 1"
            ).fetchall()
        )
        active_words = conn.execute(
            """
            select count(*) from patas.rule_lifecycle as l
            inner join patas.rule_evidence as e using (rule_id)
            where l.status = 'active' and e.rule_kind = 'word_common' and l.is_pinned = false
                and l.status_reason not like 'review_approved%'
            """
        ).fetchone()[0]
    assert kinds.get("word_common") is not None, kinds  # the demo drafts common words (for review)
    assert kinds["word_common"] == 0 and active_words == 0


@pytest.mark.parametrize("fmt", ["rol", "sql", "json"])
def test_rules_export_each_format(user: User, demo, fmt: str):
    assert "patas rules export --format rol --out rules.json" in README
    out = user.cwd / f"rules.{fmt}.out"
    user("rules", "export", "--format", fmt, "--out", str(out))
    text = out.read_text()
    active = {r["rule_id"] for r in json.loads(user("rules", "list", "--status", "active", "--json").stdout)}
    if fmt == "rol":  # every active rule is a regex rule or listed as skipped, with the reason
        data = json.loads(text)
        ids = {r["id"] for r in data["rules"]}
        skipped = {r["id"] for r in data.get("skipped", [])}
        assert ids and ids | skipped == active and not ids & skipped
        assert all(r["metadata"]["applies_to"] in ("raw_text", "normalized_text") for r in data["rules"])
    elif fmt == "json":
        data = json.loads(text)
        assert {r.get("id") or r.get("rule_id") for r in data["rules"]} == active
    else:
        assert all(rule_id in text for rule_id in active)
    stdout = user("rules", "export", "--format", fmt).stdout
    assert stdout.strip() == text.strip() or fmt == "rol"  # rol carries its creation time


def test_ingest_jsonl_and_csv_with_a_map(user: User, demo):
    assert "patas ingest messages.jsonl" in README and "--map text=body,is_spam=label" in README
    jsonl = user.cwd / "messages.jsonl"
    jsonl.write_text(
        json.dumps({"id": "cli-1", "text": "WIN a prize now at prize-claims.example", "is_spam": True}) + "\n"
        + "not json\n"
        + json.dumps({"id": "cli-2", "text": "see you at lunch", "is_spam": False}) + "\n"
    )  # fmt: skip
    res = user("ingest", str(jsonl))
    assert re.search(r"read 3 = loaded 2 \+ duplicate 0 \+ quarantined 1", res.stdout), res.stdout
    again = user("ingest", str(jsonl))
    assert "loaded 0 + duplicate 2 + quarantined 1" in again.stdout
    csv = user.cwd / "messages.csv"
    csv.write_text('body,label\n"cheap meds at rx-deals.example",spam\nhello there,ham\n')
    res = user("ingest", str(csv), "--map", "text=body,is_spam=label", "--json")
    report = json.loads(res.stdout)
    assert (report["read"], report["loaded"], report["quarantined"]) == (2, 2, 0)
    missing = user("ingest", "nope.jsonl", ok=False)
    assert missing.returncode == 2 and missing.stderr.strip() == "error: no such file: nope.jsonl"


def test_run_after_ingest(user: User, demo):
    assert "patas run " in README
    res = user("run")
    assert "PATAS run summary" in res.stdout and "messages:        20,0" in res.stdout
    as_json = json.loads(user("run", "--json").stdout)
    assert as_json["success"] is True and as_json["run_spec"]["split"] == "auto"
    # Nothing new since the run just before: no step ran, that run's results stand.
    assert as_json["nothing_new"]["since_run"] in res.stdout
    assert "patas run --force" in README
    forced = user("run", "--force")
    assert "PATAS run summary" in forced.stdout and "nothing new:" not in forced.stdout
    assert re.search(r"^stage 1:\s+skipped, earlier result re-used", forced.stdout, re.M), forced.stdout
    bad = user("run", "--evaluation-share", "0", ok=False)
    assert bad.returncode == 2 and bad.stderr.startswith("error: evaluation_share must be between 1 and 99")


def test_run_with_a_stage2_slice_and_in_simple_mode(user: User, demo):
    assert "patas run --stage2-slice wide" in README and "patas run --no-two-stage" in README
    res = user("run", "--stage2-slice", "wide")
    line = next(x for x in res.stdout.splitlines() if x.startswith("stage 2:"))
    assert "% of the mining window; slice 5.0% + uncovered spam, sample <= 4000)" in line, line
    assert "embeddings:      lexical / " in res.stdout
    simple = user("run", "--no-two-stage")
    assert "stage 2:         off (stage 1 only)" in simple.stdout
    bad = user("run", "--stage2-slice", "huge", ok=False)
    assert bad.returncode == 2 and bad.stderr.startswith(
        "error: stage-2 slice must be one of narrow, default"
    )
    assert len(bad.stderr.strip().splitlines()) == 1


def test_patterns_list_show_match(user: User, demo):
    for typed in (
        "patas patterns list",
        "patas patterns show <id>",
        'patas patterns match "WIN a prize! Reply WIN to 87121"',
    ):
        assert typed in README
    listed = user("patterns", "list")
    lines = listed.stdout.splitlines()
    assert lines[0].split()[:3] == ["pattern", "v", "runs"] and len(lines) > 1
    assert all(x.startswith(("cluster:c_", "rule:r_")) for x in lines[1:])
    rows = json.loads(user("patterns", "list", "--kind", "cluster", "--json").stdout)
    assert rows and {p["kind"] for p in rows} == {"cluster"}
    cluster = rows[0]
    shown = user("patterns", "show", cluster["pattern_id"])
    assert shown.stdout.startswith(f"{cluster['pattern_id']}  cluster  v{cluster['version']}")
    assert "embeddings: lexical / " in shown.stdout and "versions: v1 (" in shown.stdout
    assert "\nsuccess: " in shown.stdout
    rule_rows = json.loads(user("patterns", "list", "--kind", "rule", "--json").stdout)
    if rule_rows:  # an active rule's evidence: measured in the run that promoted it
        import psycopg

        pid = rule_rows[0]["pattern_id"]
        line = next(x for x in user("patterns", "show", pid).stdout.splitlines() if x.startswith("success: "))
        m = re.fullmatch(
            r"success: (\d+) hits \(spam (\d+), ham (\d+)\), precision \S+, active (\d+) of (\d+) night\(s\),"
            r" rules derived 1 \([01] active\), re-used in \d+ run\(s\)",
            line,
        )
        assert m, line
        with psycopg.connect(user.env["PATAS_DATABASE_URL"]) as conn:
            last = conn.execute(
                "select h.hits, h.spam_hits, h.ham_hits from patas.pattern_stats as h where h.pattern_id = %s"
                " order by h.recorded_at desc limit 1",
                (pid,),
            ).fetchone()
            now = conn.execute(
                "select count(distinct h.message_id), count(distinct h.message_id) filter (where m.is_spam),"
                " count(distinct h.message_id) filter (where m.is_spam is false) from marts.rule_hits as h"
                " join intermediate.int_messages_enriched as m using (message_id)"
                " where h.rule_id = %s and h.window_name = 'evaluation'",
                (pid.removeprefix("rule:"),),
            ).fetchone()
        assert last == now  # the latest run's figures are its shadow evaluation's hits
        hits, spam, ham, nights, runs = (int(x) for x in m.groups())
        assert hits >= spam + ham >= last[1] + last[2] and nights <= runs and runs >= 1
    # A unique prefix of the bare cluster id is enough.
    bare = cluster["pattern_id"].removeprefix("cluster:")
    assert user("patterns", "show", bare[:9]).stdout == shown.stdout
    unknown = user("patterns", "show", "no-such-pattern", ok=False)
    assert unknown.returncode == 2 and unknown.stderr.strip() == "error: no pattern 'no-such-pattern'"
    matched = user("patterns", "match", "WIN a prize! Reply WIN to 87121")
    sims = [float(x.split()[0]) for x in matched.stdout.splitlines()]
    assert 1 <= len(sims) <= 5 and sims == sorted(sims, reverse=True) and -1 <= sims[-1] <= sims[0] <= 1
    as_json = json.loads(user("patterns", "match", "WIN a prize! Reply WIN to 87121", "--json").stdout)
    assert [round(m["similarity"], 3) for m in as_json["matches"]] == sims
    # The example of a stored cluster finds that cluster first.
    example = cluster["summary"]["examples"][0]
    top = json.loads(user("patterns", "match", example, "-k", "3", "--json").stdout)["matches"]
    assert cluster["pattern_id"] in [m["pattern_id"] for m in top]
    empty = user("patterns", "match", "  ", ok=False)
    assert empty.returncode == 2 and empty.stderr.strip() == "error: TEXT is empty"


def test_feedback_appeals_deprecate_a_rule_on_the_next_run(user: User, demo):
    """The feedback loop as a user types it: appeals on an active rule's hits, then `patas run`."""
    import psycopg

    assert "patas feedback <id> --verdict ham --source user_appeal" in README
    assert "patas feedback --file f.jsonl" in README
    with psycopg.connect(user.env["PATAS_DATABASE_URL"]) as conn:
        rule_id, ids = conn.execute(
            """
            select h.rule_id, array_agg(m.external_id order by m.external_id)
            from marts.rule_hits as h
            join raw.messages as m using (message_id)
            join patas.rule_lifecycle as l using (rule_id)
            where h.window_name = 'evaluation' and l.status = 'active' and m.is_spam
            group by h.rule_id
            having count(*) >= 3
            order by count(*), h.rule_id
            limit 1
            """
        ).fetchone()
    one = user("feedback", ids[0], "--verdict", "ham", "--source", "user_appeal")
    assert one.stdout.startswith("recorded 1 of 1 verdict(s)") and "1 of them to ham" in one.stdout
    f = user.cwd / "f.jsonl"
    f.write_text(
        "".join(json.dumps({"id": i, "verdict": "ham", "source": "user_appeal"}) + "\n" for i in ids)
    )
    many = json.loads(user("feedback", "--file", "f.jsonl", "--json").stdout)
    assert many == {"received": len(ids), "recorded": len(ids) - 1, "unchanged": 1,
                    "overrides": len(ids) - 1, "reversals": len(ids) - 1}  # fmt: skip

    for args, message in (
        (
            ("no-such-id", "--verdict", "ham"),
            "error: unknown message id 'no-such-id': ingest the message first",
        ),
        ((ids[0], "--verdict", "maybe"), "error: verdict must be 'spam' or 'ham', not 'maybe'"),
        ((ids[0],), "error: give MESSAGE_ID and --verdict spam|ham, or --file F.jsonl"),
        (("--file", "missing.jsonl"), "error: missing.jsonl: No such file or directory"),
    ):
        bad = user("feedback", *args, ok=False)
        assert bad.returncode == 2 and bad.stderr.strip() == message, (args, bad.stderr)

    user("run")
    card = json.loads(user("rules", "show", rule_id, "--json").stdout)
    assert card["status"] == "deprecated", card
    with psycopg.connect(user.env["PATAS_DATABASE_URL"]) as conn:
        reason = conn.execute(
            "select reason from patas.rule_audit where rule_id = %s order by audit_id desc limit 1",
            (rule_id,),
        ).fetchone()[0]
        recorded = conn.execute("select count(*) from patas.label_feedback").fetchone()[0]
    assert reason.startswith(f"feedback: {len(ids)} of "), reason
    assert recorded == len(ids)


def test_db_status_and_url(user: User, demo):
    res = user("db", "status")
    assert res.stdout.startswith("external warehouse reachable: postgresql://")
    assert user("db", "url").stdout.strip() == user.env["PATAS_DATABASE_URL"]


def test_unreachable_warehouse_is_one_line(user: User):
    env = {**user.env, "PATAS_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/nothing"}
    for args in (("rules", "list"), ("rules", "export", "--format", "sql"), ("run",)):
        res = subprocess.run([PATAS, *args], env=env, capture_output=True, text=True, timeout=120)
        assert res.returncode == 2, (args, res.stderr)
        assert len(res.stderr.strip().splitlines()) == 1 and res.stderr.startswith("error: cannot reach"), (
            res.stderr
        )


def test_dbt_passthrough(user: User, demo):
    assert "patas dbt -- run --full-refresh" in README
    res = user("dbt", "--", "ls", "--select", "active_rules", "--quiet")
    assert "active_rules" in res.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serves(
    cmd: list[str], env: dict[str, str], cwd: Path, url: str, timeout: float = 240, stderr: list | None = None
) -> str:
    """The first answer on ``url`` while ``cmd`` runs; the process's stderr goes into ``stderr``."""
    proc = subprocess.Popen(
        cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                _stop_group(proc)
                raise AssertionError(proc.stderr.read().decode()[-3000:])
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    return r.read().decode("utf-8", "replace")
            except OSError:
                time.sleep(1)
        raise AssertionError(f"{cmd} did not answer on {url} in {timeout} s")
    finally:
        _stop_group(proc)
        if stderr is not None:
            stderr.append(proc.stderr.read().decode("utf-8", "replace"))


def _stop_group(proc: subprocess.Popen, grace: float = 60) -> None:
    """SIGTERM to the command's process group, SIGKILL to whatever of it is left after ``grace``
    seconds: a server's child that outlives the command holds its stderr pipe open, and reading
    that pipe would then wait forever (a CI run hung on it under load)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace)
    if not _group_gone(proc.pid, grace):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=grace)


def _group_gone(pgid: int, within: float) -> bool:
    """Whether no process of group ``pgid`` is left, waiting up to ``within`` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.5)
    return False


def test_ui_starts_and_answers_http(user: User, demo):
    assert "patas ui" in README
    port = _free_port()
    err: list[str] = []
    body = _serves(
        [PATAS, "ui", "--port", str(port)],
        user.env,
        user.cwd,
        f"http://127.0.0.1:{port}/server_info",
        stderr=err,
    )
    assert "dagster_webserver_version" in body
    # Both start switched off: the user is told how to switch them on, and where the inbox is.
    inbox = Path(user.env["PATAS_HOME"]) / "inbox"
    for needle in (
        "nightly_patas_run", "inbox_sensor", f"http://127.0.0.1:{port}/automation", str(inbox),
        "dagster schedule start nightly_patas_run", "dagster sensor start inbox_sensor",
    ):  # fmt: skip
        assert needle in err[0], (needle, err[0][-3000:])
    assert inbox.is_dir()


def test_ui_stops_with_its_servers_on_sigterm(user: User, demo):
    """A SIGTERM to `patas ui` alone (what a service manager or `kill` sends) stops Dagster's
    webserver and daemon too: nothing of its process group is left running. Started with SIGINT
    ignored, as `patas ui &` in a script (or nohup) starts it: `dagster dev` answers SIGTERM with its
    SIGINT handler, and an ignored SIGINT survives exec."""
    port = _free_port()
    proc = subprocess.Popen(
        [PATAS, "ui", "--port", str(port)], env=user.env, cwd=user.cwd,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            assert proc.poll() is None, "patas ui exited before it answered"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=5):
                    break
            except OSError:
                time.sleep(1)
        else:
            raise AssertionError("patas ui did not answer in 240 s")
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        assert _group_gone(proc.pid, 60), "a process of `patas ui` outlived its SIGTERM"
    finally:
        _stop_group(proc, grace=10)


def test_docs_starts_and_answers_http(user: User, demo):
    assert "patas docs" in README
    port = _free_port()
    body = _serves([PATAS, "docs", "--port", str(port)], user.env, user.cwd, f"http://127.0.0.1:{port}/")
    assert "dbt" in body.lower()


def test_bench_quality_and_speed_with_tiny_inputs(user: User, demo, shared_dataset: Path):
    assert "patas bench quality --data msgs.jsonl --out q.json" in README
    assert "patas bench speed --rows 100000 --out speed.json" in README
    sample = user.cwd / "msgs.jsonl"
    sample.write_text("".join(shared_dataset.read_text().splitlines(keepends=True)[:1500]))
    q = user.cwd / "q.json"
    user("bench", "quality", "--data", str(sample), "--out", str(q), "--one-run", timeout=900)
    result = json.loads(q.read_text())
    assert {p["profile"] for p in result["profiles"]} == {"conservative", "balanced", "aggressive"}
    s = user.cwd / "speed.json"
    user("bench", "speed", "--rows", "3000", "--out", str(s), "--rules", "50", "--no-end-to-end", timeout=900)
    assert json.loads(s.read_text())["rows"] == 3000


def test_generate_small_and_bad_scenario(user: User):
    assert "patas generate --small --out first_export.jsonl" in README
    out = user.cwd / "first_export.jsonl"
    res = user("generate", "--small", "--out", str(out))
    assert res.stdout.startswith("wrote 1,500 messages to")
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 1500 and len({m["timestamp"][:10] for m in lines}) == 14
    small = {m["meta"].get("campaign") for m in lines} & {"fake_invoice", "tax_refund", "wrong_number"}
    assert small == {"fake_invoice", "tax_refund", "wrong_number"}
    bad = user("generate", "--out", str(out), "--scenario", "nope", ok=False)
    assert (
        bad.returncode == 2
        and bad.stderr.strip() == "error: unknown scenario 'nope' (expected 'default' or 'drift')"
    )


def test_stage2_benchmark_commands_as_docs_give_them(user: User):
    """docs/benchmarks.md's stage-2 commands, as typed, on small inputs."""
    docs = (REPO / "docs" / "benchmarks.md").read_text()
    for typed in (
        "patas generate --rows 20000 --seed 7 --paraphrase --out para.jsonl",
        "patas bench quality --data para.jsonl --profile conservative --no-two-stage --out q1.json",
        "python benchmarks/library_match_latency.py --patterns 10000 --queries 200 --out lib.json",
    ):
        assert typed in docs, typed
    para = user.cwd / "para.jsonl"
    res = user("generate", "--rows", "3000", "--seed", "7", "--paraphrase", "--out", str(para))
    assert res.stdout.startswith("wrote 3,000 messages to")
    names = {json.loads(x)["meta"].get("campaign") for x in para.read_text().splitlines()}
    assert {"para_remote_job", "para_investment", "para_lottery"} <= names
    q1 = user.cwd / "q1.json"
    user("bench", "quality", "--data", str(para), "--profile", "conservative", "--no-two-stage",
         "--out", str(q1), timeout=900)  # fmt: skip
    one = json.loads(q1.read_text())
    assert one["two_stage"] is False and one["runs"]["conservative"]["stage2"]["method"] == "off"
    assert "semantic" not in one["profiles"][0]["rules_by_origin"]
    bad = user("bench", "quality", "--data", str(para), "--out", str(q1), "--no-two-stage",
               "--engine", "staged", ok=False)  # fmt: skip
    assert bad.returncode == 2 and bad.stderr.strip() == (
        "error: --no-two-stage and --stage2-* are measured with --engine dagster, without --sample"
    )
    bad = user("bench", "quality", "--data", str(para), "--out", str(q1), "--stage2-slice", "huge", ok=False)
    assert bad.returncode == 2 and bad.stderr.startswith("error: stage-2 slice must be one of narrow")
    assert len(bad.stderr.strip().splitlines()) == 1
    lib = user.cwd / "lib.json"
    script = REPO / "benchmarks" / "library_match_latency.py"
    res = subprocess.run(
        [sys.executable, str(script), "--patterns", "50", "--queries", "10", "--out", str(lib)],
        capture_output=True, text=True, env=user.env, cwd=user.cwd, timeout=600,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    figures = json.loads(lib.read_text())
    assert figures["patterns"] == 50 and figures["match_exact"]["calls"] == 10
    assert 0 < figures["match_exact"]["p50_ms"] <= figures["match_exact"]["p99_ms"]
    bad = subprocess.run([sys.executable, str(script), "--patterns", "0", "--out", str(lib)],
                         capture_output=True, text=True, env=user.env, cwd=user.cwd)  # fmt: skip
    assert bad.returncode == 2 and "--patterns and --queries must be at least 1" in bad.stderr


def test_dagster_event_log_benchmark_as_docs_give_it(user: User, demo):
    """docs/benchmarks.md's event-log replay, on the demo's Dagster instance."""
    docs = (REPO / "docs" / "benchmarks.md").read_text()
    assert ".venv/bin/python benchmarks/dagster_event_log.py .patas/dagster" in docs
    script = REPO / "benchmarks" / "dagster_event_log.py"
    # A copy of the demo's instance, whose newest shard logged nothing (a run can leave one): skipped.
    home = str(user.cwd / "dagster_copy")
    shutil.copytree(user.env["DAGSTER_HOME"], home, dirs_exist_ok=True)
    (Path(home) / "history" / "runs" / "0-empty-run.db").touch()
    res = subprocess.run([sys.executable, str(script), home, "1"],
                         capture_output=True, text=True, env=user.env, cwd=user.cwd, timeout=600)  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    figures = json.loads(res.stdout)
    assert figures["events"] > 50
    assert set(figures["median_ms_per_event"]) == {"SqliteEventLogStorage", "KeptSqliteEventLogStorage"}
    assert all(ms > 0 for ms in figures["median_ms_per_event"].values())
    for args in ([str(user.cwd / "nowhere")], [home, "0"]):
        bad = subprocess.run([sys.executable, str(script), *args],
                             capture_output=True, text=True, env=user.env, cwd=user.cwd)  # fmt: skip
        assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
        assert bad.stderr.startswith(("error: no Dagster run under", "usage: dagster_event_log.py"))


def test_generate_unspaced_as_docs_give_it(user: User):
    """`patas generate --unspaced`: Thai spam and ham take the place of ~15% of each, labels kept;
    every other line is the one the same command writes without the flag."""
    docs = (REPO / "docs" / "benchmarks.md").read_text()
    typed = "patas generate --rows 20000 --unspaced --out gen_th.jsonl"
    assert typed in docs, typed
    th, plain = user.cwd / "gen_th.jsonl", user.cwd / "plain.jsonl"
    res = user("generate", "--rows", "3000", "--unspaced", "--out", str(th))
    assert res.stdout.startswith("wrote 3,000 messages to")
    user("generate", "--rows", "3000", "--out", str(plain))
    a = [json.loads(x) for x in plain.read_text().splitlines()]
    b = [json.loads(x) for x in th.read_text().splitlines()]
    changed = [(x, y) for x, y in zip(a, b, strict=True) if x != y]
    assert all(y["meta"]["language"] == "th" and x["is_spam"] == y["is_spam"] for x, y in changed)
    assert 0.10 < len(changed) / len(a) < 0.20
    assert {y["meta"].get("campaign") for _, y in changed if y["is_spam"]} == {"th_casino", "th_loan"}
    assert any(y["is_spam"] is False for _, y in changed)


def test_unknown_language_is_one_line(user: User, demo):
    assert "`PATAS_LANGUAGES`" in README
    bad = User({**user.env, "PATAS_LANGUAGES": "en,xx"}, user.cwd)("run", ok=False)
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: no word-frequency list for xx (PATAS_LANGUAGES)")
    assert len(bad.stderr.strip().splitlines()) == 1


def test_bench_quality_on_samples_and_first_rule(user: User, demo, shared_dataset: Path):
    assert "patas bench quality --data msgs.jsonl --sample 600 --seeds 1,2,3 --out q600.json" in README
    assert "patas bench first-rule --rows 3000 --days 14 --out fr.json" in README
    q = user.cwd / "q600.json"
    res = user("bench", "quality", "--data", str(shared_dataset), "--sample", "600", "--seeds", "1",
               "--out", str(q), timeout=900)  # fmt: skip
    assert "profile order holds on every seed:" in res.stdout
    result = json.loads(q.read_text())
    assert result["sample_size"] == 600 and [r["seed"] for r in result["runs"]] == [1]
    assert result["runs"][0]["messages"] == 600
    assert set(result["summary"]) == {"conservative", "balanced", "aggressive"}
    bad = user("bench", "quality", "--data", str(shared_dataset), "--sample", "600", "--seeds", "a",
               "--out", str(q), ok=False)  # fmt: skip
    assert (
        bad.returncode == 2
        and bad.stderr.strip() == "error: --seeds: not a comma-separated list of integers: 'a'"
    )
    fr = user.cwd / "fr.json"
    res = user("bench", "first-rule", "--rows", "600", "--days", "2", "--out", str(fr), timeout=900)
    result = json.loads(fr.read_text())
    assert len(result["nights"]) == 2 and result["campaigns"]
    for name, c in result["campaigns"].items():
        assert name in res.stdout and c["messages"] > 0 and c["first_seen_night"] in (1, 2)
        assert c["caught"] == (c["first_rule_night"] is not None)


def test_a_second_run_stops_at_once_with_a_clear_message(user: User, demo):
    import psycopg

    from python_steps.warehouse import RUN_LOCK_KEY

    logs = Path(user.env["PATAS_HOME"]) / "logs"
    before = sorted(logs.glob("run-*.log"))
    with psycopg.connect(user.env["PATAS_DATABASE_URL"], autocommit=True) as other_run:
        other_run.execute("select pg_advisory_lock(%s)", (RUN_LOCK_KEY,))
        res = user("run", ok=False)
    assert sorted(logs.glob("run-*.log")) == before  # no empty log of a run that never started
    assert res.returncode == 2
    assert (
        res.stderr.strip() == "error: another PATAS run holds the warehouse lock; try again when it finishes"
    )


def test_the_embedded_dagster_instance_has_telemetry_off_and_one_run_at_a_time(user: User, demo):
    config = (Path(user.env["DAGSTER_HOME"]) / "dagster.yaml").read_text()
    assert "telemetry:\n  enabled: false" in config and "max_concurrent_runs: 1" in config


def test_normalize_jsonl_text_and_words(user: User):
    assert "patas normalize --jsonl messages.jsonl" in README
    src = user.cwd / "to_normalize.jsonl"
    src.write_text(json.dumps({"id": "n1", "text": "Ｆｒｅｅ  c1aim: WWW.Example.com"}) + "\n")
    out = json.loads(user("normalize", "--jsonl", str(src)).stdout)
    assert (
        out["normalized_text"] == "free claim: ww.example.com" and out["words"] == "free claim ww example com"
    )
    res = subprocess.run(
        [PATAS, "normalize", "--words"],
        input="Ｆｒｅｅ  c1aim\n",
        env=user.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0 and res.stdout == "free claim\n"


def test_truncated_gzip_is_one_line_and_exit_2(user: User, demo):
    import gzip

    whole = gzip.compress(
        b"".join(json.dumps({"id": f"g{i}", "text": f"hello {i}"}).encode() + b"\n" for i in range(200))
    )
    bad = user.cwd / "cut.jsonl.gz"
    bad.write_bytes(whole[: len(whole) // 2])
    res = user("ingest", str(bad), ok=False)
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1 and "Aborted" not in res.stderr


def test_db_start_status_stop_on_a_fresh_embedded_server(tmp_path: Path):
    """`patas db start|status|url|stop` on an embedded Postgres of its own (PATAS_DATABASE_URL unset)."""
    assert "`patas db start|stop|status|url`" in README
    env = {k: v for k, v in os.environ.items() if k not in ("PATAS_DATABASE_URL", "DAGSTER_HOME")}
    env["PATAS_HOME"] = str(tmp_path / "home")

    def patas(*args: str) -> subprocess.CompletedProcess:
        res = subprocess.run([PATAS, "db", *args], env=env, capture_output=True, text=True, timeout=300)
        assert "Traceback" not in res.stderr, res.stderr
        return res

    try:
        started = patas("start")
        assert started.returncode == 0 and started.stdout.startswith("postgresql://"), started.stderr
        status = patas("status")
        assert status.returncode == 0 and status.stdout.startswith("embedded Postgres running: postgresql://")
        assert patas("url").stdout.strip() == started.stdout.strip()
    finally:
        stopped = patas("stop")
    assert stopped.returncode == 0 and stopped.stdout.strip() == "stopped"
    after = patas("status")
    assert after.returncode == 1 and after.stdout.startswith("embedded Postgres stopped")


def test_retention_dry_run_then_purge_then_bad_input(user: User, demo):
    """Last in this module: it deletes the demo's oldest messages."""
    import gzip

    import psycopg

    assert "patas retention --keep-days 90 --dry-run" in README
    with psycopg.connect(user.env["PATAS_DATABASE_URL"]) as conn:
        before = conn.execute("select count(*) from raw.messages").fetchone()[0]
    dry = user("retention", "--keep-days", "90", "--dry-run")
    assert re.match(
        r"event time before 2025-\S+( and untimed messages ingested before \S+)?: would archive and delete 0"
        r" message\(s\); kept 0 older",
        dry.stdout,
    ), dry.stdout
    res = user("retention", "--keep-days", "20")
    m = re.match(
        r"event time before 2026-01-1\S+?(?: and untimed messages ingested before \S+?)?: archived and deleted ([\d,]+) message\(s\) \((\S+\.jsonl\.gz)\)",
        res.stdout,
    )
    assert m, res.stdout
    purged, archive = int(m.group(1).replace(",", "")), Path(m.group(2))
    assert purged > 0 and archive.parent == Path(user.env["PATAS_HOME"]) / "archive"
    with gzip.open(archive, "rt") as fh:
        assert sum(1 for _ in fh) == purged
    with psycopg.connect(user.env["PATAS_DATABASE_URL"]) as conn:
        assert conn.execute("select count(*) from raw.messages").fetchone()[0] == before - purged
    for args, message in (
        (("--keep-days", "0"), "error: keep-days must be a whole number of days, at least 1 (not 0)"),
        (("--keep-days", "ninety"), "error: --keep-days must be a whole number of days, not 'ninety'"),
    ):
        bad = user("retention", *args, ok=False)
        assert bad.returncode == 2 and bad.stderr.strip() == message, bad.stderr
