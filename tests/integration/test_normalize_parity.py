"""The SQL normalizer and extractors (dbt macros) give exactly what python_steps.text.normalize gives.

The macros are compiled once (``dbt compile --inline``) into one query over a text parameter and
a batch query over a table of texts; both run on this session's Postgres database. Inputs: every
text of the shared UCI dataset, hand-picked adversarial strings, a seeded random mix of awkward
characters, and hypothesis-generated strings. Zero differences are allowed.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import unicodedata
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from python_steps.settings import dbt_env
from python_steps.text import normalize as nz

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
KINDS = ("urls", "hosts", "phones", "short_codes", "handles", "emails", "money")

INLINE_SQL = """
select
    p.input_no,
    {{ normalize_prepared_text('p.prepared_text') }} as normalized_text,
    {{ template_signature(normalize_prepared_text('p.prepared_text')) }} as signature,
    {{ entity_array(extract_urls('p.deobfuscated_text')) }} as urls,
    array(
        select distinct {{ url_host('u.entity_value') }} collate "C"
        from ({{ extract_urls('p.deobfuscated_text') }}) as u
        order by 1
    ) as hosts,
    {{ entity_array(extract_phones('p.prepared_text')) }} as phones,
    {{ entity_array(extract_short_codes('p.prepared_text')) }} as short_codes,
    {{ entity_array(extract_handles('p.deobfuscated_text')) }} as handles,
    {{ entity_array(extract_emails('p.deobfuscated_text')) }} as emails,
    {{ entity_array(extract_money('p.prepared_text')) }} as money,
    {{ normalize_text('p.raw_text') }} as normalized_text_direct,
    p.deobfuscated_text <> p.prepared_text as deobfuscation_changes,
    p.prepared_text ~ {{ text_pattern('deobfuscate_check') }} as deobfuscate_check,
    {{ maybe_obfuscated('p.prepared_text') }} as maybe_obfuscated
from (
    select q.input_no, q.raw_text, q.prepared_text, {{ deobfuscate_text('q.prepared_text') }} as deobfuscated_text
    from (
        select x.input_no, x.raw_text, {{ prepare_text('x.raw_text') }} as prepared_text
        from parity_inputs as x
        offset 0
    ) as q
    offset 0
) as p
order by p.input_no
"""

ADVERSARIAL = [
    "",
    " ",
    "FREE entry!!! Txt WIN to 80086 now",
    "pаypal.com: verify your аccount",  # Cyrillic а
    "Привeт, как дела? Пpoдам гараж",  # Latin e, p, o inside Russian words
    "c1aim y0ur pr1ze n0w, fr33 gift 5ale",
    "WWW.Example.CO.UK/AbC?x=1).",
    "hxxps://evil[.]com/login and bad(dot)site(dot)ru",
    "go to example . com or shop. ru today",
    "t.me/joinchat/AbC t.me/spam_bot telegram.me/other_one @Handle_1 a@b.co",
    "Call +44 (0)7700 900123 or 0800-123-4567 or (555) 123.4567 or 12 34",
    "phone O8OO l23 4567 and +7 9l2 345 67 89",
    "claim 0871277810910p/min, call09050000327, Help08714742804 o8oo l23 4567 lo8001234567",
    "£1,000.50 or $ 20 or 500 euros or 100 руб or 5 pounds or usd 3",
    "zero\u200bwidth\u200d joiner\ufeff bom \u202eright-to-left\u202c",
    "\uff26\uff32\uff25\uff25 fullwidth \u2160 roman \u212a kelvin \ufb01 ligature",
    "ΣΟΦΟΣ σοφος ΑΒΓ",
    "İstanbul ẞtraße ǅ ǈ",
    "emoji 😀😀😀 and new ones \U0001fae8 \U0001e030 \U0001cc00",
    "tabs\tand\nnewlines\r\nand\u00a0nbsp\u2003em\u3000ideographic",
    "Ellipsis... and !!!!!! and ????? and ааааа and zzzz",
    'send STOP to 62468 or text the password "MIX" to 85069',
    "mail: John.Doe+tag@Sub.Example.ORG.",
    "a.b.c.d.e.f.kawasaki.jp www.ck x.github.io пример.рф",
    "numbers 1000000 and 3.14 and 2026-01-01 and 10:30",
    "Ａｂｃ ｄｅｆ",
    "\u0301\u0301 combining first",
    "x" * 300,
    "o0o0o l1l1l e3e3e s5s5s",
    "ΡΑΥΡΑL ΡayΡal",
    "HXXP://x.y evil{.}com a[dot]b c(.)d bit. ly/x site .online word.  com end. co",
]

AWKWARD_CHARS = (
    "aeiouxyzAEIOUXYZ0123456789 .,:;!?@/-_+()[]{}'\"$£€₽¥#%&*"
    "абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯ"
    "αβγδεζηθικλμνξοπρστυφχψωΑΒΓΔΕΖΗΘΙΚΛΜΝΞΟΠΡΣΤΥΦΧΨΩς"
    "àáâãäåæçèéêëìíîïðñòóôõöøùúûüýþÿÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÐÑÒÓÔÕÖØÙÚÛÜÝÞß"
    "ĀāĂăĄąĆćĐđĘęĞğİıŁłŃńŒœŘřŠšŸŹźŽžǄǅǆ"
    "\u200b\u200c\u200d\u200e\u200f\u202a\u202e\u2066\u2069\ufeff\u00ad\u00a0\u2009\u3000\t\n"
    "\uff21\uff41\uff10\u2160\u2170\u212a\u212b\ufb01\u2122\u00bd\u2460\u24b6\u1d2c\u0301\u0308"
    "ԱաՔքẞẠạỲỳ\u1e9e"
    "😀🙂\U0001fae8\U0001e030\U0001cc00\U000e0001\u0378\uffff"
)


def _random_strings(n: int, seed: int = 20260101) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        k = rng.randint(0, 60)
        chunks = []
        while len(chunks) < k:
            r = rng.random()
            if r < 0.15:
                chunks.append(rng.choice(ADVERSARIAL)[: rng.randint(0, 40)])
            elif r < 0.25:
                chunks.append(rng.choice(AWKWARD_CHARS) * rng.randint(2, 5))
            else:
                chunks.append(rng.choice(AWKWARD_CHARS))
        out.append("".join(chunks))
    return out


@pytest.fixture(scope="module")
def parity_sql(warehouse_url: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The inline query compiled by dbt (macros only; no relation is read at compile time)."""
    tmp = tmp_path_factory.mktemp("dbt_parity")
    res = subprocess.run(
        [
            str(Path(sys.executable).with_name("dbt")),
            "compile",
            "--inline",
            INLINE_SQL,
            "--target-path",
            str(tmp / "target"),
            "--log-path",
            str(tmp / "logs"),
            "--quiet",
            "--no-partial-parse",
        ],
        cwd=REPO_ROOT,
        env=dbt_env(warehouse_url),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    sql = res.stdout.strip()
    assert sql.lower().lstrip().startswith("select"), sql[:500]
    return sql


def _sql_results(url: str, sql: str, texts: list[str]) -> list[dict]:
    with psycopg.connect(url) as conn:
        conn.execute("create temp table parity_inputs (input_no int primary key, raw_text text not null)")
        with conn.cursor().copy("copy parity_inputs (input_no, raw_text) from stdin") as cp:
            for i, t in enumerate(texts):
                cp.write_row((i, t))
        cur = conn.execute(sql)
        cols = [d.name for d in cur.description]
        rows = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
        conn.rollback()
    return rows


def _python_results(text: str) -> dict:
    e = nz.message_entities(text)
    e["normalized_text_direct"] = nz.normalize_text(text)
    return e


def _compare(texts: list[str], rows: list[dict]) -> list[str]:
    assert len(rows) == len(texts)
    diffs = []
    for text, row in zip(texts, rows, strict=True):
        py = _python_results(text)
        for key in ("normalized_text", "normalized_text_direct", "signature", *KINDS):
            if row[key] != py[key]:
                diffs.append(f"{key}: text={text!r}\n  sql={row[key]!r}\n  py ={py[key]!r}")
        # The models de-obfuscate only the texts that pass the pre-check: it must hold wherever
        # de-obfuscation changes the text, and its cheap SQL form must equal the regex.
        if row["deobfuscation_changes"] and not row["deobfuscate_check"]:
            diffs.append(f"deobfuscate_check misses a text de-obfuscation changes: {text!r}")
        if row["maybe_obfuscated"] != row["deobfuscate_check"]:
            diffs.append(
                f"maybe_obfuscated={row['maybe_obfuscated']} but deobfuscate_check={row['deobfuscate_check']}: {text!r}"
            )
    return diffs


def _clean(texts: list[str]) -> list[str]:
    # Inputs must be storable: Postgres text has no NUL.
    return [t.replace("\x00", "") for t in texts]


def test_parity_on_adversarial_strings(warehouse_url: str, parity_sql: str) -> None:
    texts = _clean(ADVERSARIAL + _random_strings(3000))
    diffs = _compare(texts, _sql_results(warehouse_url, parity_sql, texts))
    assert not diffs, f"{len(diffs)} differences, first ones:\n" + "\n".join(diffs[:15])


def test_parity_on_shared_dataset(warehouse_url: str, parity_sql: str, shared_dataset: Path) -> None:
    with open(shared_dataset, encoding="utf-8") as fh:
        texts = _clean([json.loads(line)["text"] for line in fh])
    assert len(texts) > 5000
    diffs = _compare(texts, _sql_results(warehouse_url, parity_sql, texts))
    assert not diffs, f"{len(diffs)} differences, first ones:\n" + "\n".join(diffs[:15])


_text_strategy = st.text(
    alphabet=st.one_of(
        st.sampled_from(AWKWARD_CHARS),
        st.characters(codec="utf-8", exclude_categories=("Cs",)),
    ),
    max_size=80,
)


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_text_strategy, min_size=1, max_size=40))
def test_parity_on_hypothesis_strings(warehouse_url: str, parity_sql: str, texts: list[str]) -> None:
    texts = _clean(texts)
    diffs = _compare(texts, _sql_results(warehouse_url, parity_sql, texts))
    assert not diffs, f"{len(diffs)} differences, first ones:\n" + "\n".join(diffs[:15])


def test_unicode_version_is_pinned() -> None:
    # The unassigned-code-point class is built from this table; the generated macro must match it.
    assert unicodedata.unidata_version == nz.UNICODE_VERSION
