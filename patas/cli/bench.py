"""``patas bench``: the speed and quality benchmarks (attached to the main ``patas`` group)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from patas.cli.common import fail


def _server_url() -> str:
    from patas.embedded import database_url

    return database_url()


def _echo_figures(result: dict, keys: tuple[str, ...]) -> None:
    click.echo(json.dumps({k: result.get(k) for k in keys}, indent=2))


@click.group()
def bench() -> None:
    """Benchmarks: stage speed against physical floors, rule quality against baselines.

    Both create databases of their own on the warehouse server (PATAS_DATABASE_URL or the embedded
    Postgres) and drop them afterwards; your data is not touched.
    """


@bench.command()
@click.option("--rows", type=int, required=True, help="Messages in the generated corpus.")
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="JSON file.")
@click.option("--rules", "target_rules", type=int, default=1000, show_default=True,
              help="Shadow-evaluate at least this many rules (drafted rules padded if fewer).")  # fmt: skip
@click.option("--profile", default="conservative", show_default=True)
@click.option("--no-end-to-end", is_flag=True, help="Skip the separate end-to-end run through Dagster.")
@click.option("--keep-databases", is_flag=True, help="Keep the benchmark databases for inspection.")
@click.option("--statement-timeout", type=float, default=None,
              help="Seconds: a stage-2/drafting statement running longer is cancelled and recorded.")  # fmt: skip
def speed(
    rows: int,
    seed: int,
    out: Path,
    target_rules: int,
    profile: str,
    no_end_to_end: bool,
    keep_databases: bool,
    statement_timeout: float | None,
) -> None:
    """Time every stage on N generated messages, next to a bare COPY and a sequential scan."""
    from patas.bench.speed import run_speed_bench

    result = run_speed_bench(
        rows,
        seed,
        out,
        server_url=_server_url(),
        target_rules=target_rules,
        profile=profile,
        end_to_end=not no_end_to_end,
        keep_databases=keep_databases,
        statement_timeout_s=statement_timeout,
    )
    _echo_figures(
        result,
        ("rows", "ingest_s", "copy_floor_s", "stage1_s", "scan_floor_s", "stage2_s", "stage2_rerun_s", "drafting_s",
         "shadow_eval_s", "rules_evaluated", "promotion_s", "exports_s", "end_to_end_s", "peak_rss_mb"),
    )  # fmt: skip
    click.echo(f"written to {out}")


@bench.command()
@click.option("--data", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True)
@click.option("--split", type=click.Choice(["hash", "time"]), default="hash", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="JSON file.")
@click.option("--profile", "profiles", multiple=True, help="Profiles to measure (default: all three).")
@click.option("--one-run", is_flag=True, help="One pipeline run; every profile from its would-be ruleset.")
@click.option("--engine", type=click.Choice(["dagster", "staged"]), default="dagster", show_default=True,
              help="dagster: `patas run`; staged: the same steps without Dagster.")  # fmt: skip
@click.option("--keep-databases", is_flag=True, help="Keep the benchmark databases for inspection.")
@click.option("--test-share", type=click.IntRange(0, 99), default=15, show_default=True,
              help="Split buckets (of 100) whose labels are hidden from the pipeline and measured "
                   "afterwards; 0 measures on the promotion window itself (in-sample).")  # fmt: skip
@click.option("--sample", type=click.IntRange(min=1), default=None,
              help="Measure on random subsamples of this many messages (one run per seed, staged).")  # fmt: skip
@click.option("--seeds", default="1,2,3", show_default=True, help="With --sample: comma-separated seeds.")
@click.option(
    "--no-two-stage", is_flag=True, help="Stage 1 only (`patas run --no-two-stage`); dagster engine."
)
@click.option(
    "--stage2-slice", default=None, help="Stage-2 slice preset or percent (as `patas run`); dagster engine."
)
@click.option(
    "--stage2-eps", type=float, default=None, help="Stage-2 DBSCAN eps (cosine distance); dagster engine."
)
def quality(
    data: Path,
    split: str,
    out: Path,
    profiles: tuple[str, ...],
    one_run: bool,
    engine: str,
    keep_databases: bool,
    test_share: int,
    sample: int | None,
    seeds: str,
    no_two_stage: bool,
    stage2_slice: str | None,
    stage2_eps: float | None,
) -> None:
    """Per-profile precision/recall on held-out messages, next to the two baselines.

    With --sample N: on random N-message subsamples (--seeds), mean and worst per profile."""
    from patas.bench.quality import PROFILES, run_quality_bench, run_sampled_quality_bench

    stage2 = {k: v for k, v in (("stage2_slice", stage2_slice), ("stage2_eps", stage2_eps)) if v is not None}
    if (no_two_stage or stage2) and (engine != "dagster" or sample is not None):
        fail("--no-two-stage and --stage2-* are measured with --engine dagster, without --sample")
    if stage2:
        from python_steps.runspec import RunSpec, RunSpecError

        try:
            RunSpec(**stage2)
        except (RunSpecError, ValueError) as exc:
            fail(str(exc))
    if sample is not None:
        try:
            seed_list = [int(s) for s in seeds.split(",") if s.strip()]
        except ValueError:
            seed_list = []
        if not seed_list:
            fail(f"--seeds: not a comma-separated list of integers: {seeds!r}")
        result = run_sampled_quality_bench(
            data,
            out,
            size=sample,
            seeds=seed_list,
            server_url=_server_url(),
            split=split,
            test_share=test_share,
        )
        click.echo(json.dumps(result["summary"], indent=2, sort_keys=True))
        click.echo(f"profile order holds on every seed: {result['profile_order_holds_on_every_seed']}")
        click.echo(f"written to {out}")
        return
    result = run_quality_bench(
        data,
        out,
        split=split,
        server_url=_server_url(),
        profiles=profiles or PROFILES,
        one_run=one_run,
        engine=engine,
        keep_databases=keep_databases,
        test_share=test_share,
        two_stage=not no_two_stage,
        stage2=stage2,
    )
    keys = ("profile", "rules", "rules_by_origin", "precision", "recall", "fpr", "f1", "baseline_lr_recall_at_precision",
            "baseline_naive_precision", "baseline_naive_recall")  # fmt: skip
    click.echo(json.dumps([{k: p.get(k) for k in keys} for p in result["profiles"]], indent=2))
    click.echo(f"written to {out}")


@bench.command("first-rule")
@click.option("--rows", type=click.IntRange(min=1), default=3000, show_default=True)
@click.option("--days", type=click.IntRange(min=2), default=14, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--profile", default="conservative", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="JSON file.")
def first_rule(rows: int, days: int, seed: int, profile: str, out: Path) -> None:
    """Time to first rule: nightly runs replayed over a generated span; per campaign, how many of
    its messages were seen before a rule for it was active."""
    from patas.bench.first_rule import run_first_rule_bench

    result = run_first_rule_bench(
        out, rows=rows, days=days, seed=seed, server_url=_server_url(), profile=profile
    )
    for name, c in result["campaigns"].items():
        when = (
            f"caught on night {c['first_rule_night']} after {c['messages_before_first_rule']} messages"
            if c["caught"]
            else "not caught"
        )
        click.echo(
            f"{name:<20} {c['messages']:>5} messages, first seen night {c['first_seen_night']:>2}: {when}"
        )
    click.echo(f"written to {out}")


@bench.command("serve")
@click.option("--base", default="http://127.0.0.1:8000", show_default=True, help="A running `patas serve`.")
@click.option(
    "--key", envvar="PATAS_API_KEY", required=True, help="An API key (reader role is enough for match)."
)
@click.option("--corpus", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
              help="JSONL whose texts are sent (random picks).")  # fmt: skip
@click.option(
    "--single", type=click.IntRange(min=1), default=2000, show_default=True, help="Single-message requests."
)
@click.option("--batches", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--batch-size", type=click.IntRange(1, 1000), default=1000, show_default=True)
@click.option("--ingest", type=click.IntRange(min=0), default=0, show_default=True,
              help="Also this many API ingest requests of 5,000 messages (they load!).")  # fmt: skip
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="JSON file.")
def serve_bench(base, key, corpus, single, batches, batch_size, ingest, out) -> None:
    """/rules/match latency (p50 / p99) and batch throughput of a running `patas serve`; API ingest speed."""
    import contextlib
    import io

    from patas.service import bench as service_bench

    argv = ["--base", base, "--key", key, "--corpus", str(corpus), "--single", str(single),
            "--batches", str(batches), "--batch-size", str(batch_size), "--ingest", str(ingest)]  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()):
        result = service_bench.main(argv)
    text = json.dumps(result, indent=2, sort_keys=True)
    if out:
        out.write_text(text + "\n")
    click.echo(text)


@bench.command()
@click.option("--speed", "speed_files", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Speed JSON files (one per corpus size).")  # fmt: skip
@click.option("--quality", "quality_file", type=click.Path(exists=True, path_type=Path), default=None)
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("docs"))
def plots(speed_files: tuple[Path, ...], quality_file: Path | None, out_dir: Path) -> None:
    """Draw docs/bench_stage_times.png and docs/bench_quality_pr.png and print the Markdown tables."""
    from patas.bench.plots import plot_quality, plot_stage_times
    from patas.bench.tables import quality_table, speed_table

    if speed_files:
        click.echo(plot_stage_times(list(speed_files), out_dir / "bench_stage_times.png"))
        click.echo(speed_table([json.loads(Path(f).read_text()) for f in speed_files]))
    if quality_file:
        click.echo(plot_quality(quality_file, out_dir / "bench_quality_pr.png"))
        click.echo(quality_table(json.loads(Path(quality_file).read_text())))
