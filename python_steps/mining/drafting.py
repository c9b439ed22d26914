"""Deterministic rule drafting from the stage-1 candidates.

Reads ``marts.stage1_candidates`` (signals with their mining-window spam/ham counts) and drafts:

- one rule per strong entity (registrable domain, phone, handle, short code, email, template
  signature): spam share at least ``min_spam_share`` over at least ``min_spam_count`` spam;
- one ``text_phrase`` rule per n-gram that is frequent in spam and rare in ham (same bar, and at
  most ``max_phrase_ham_count`` ham); never a phrase holding a word of a link's own syntax
  (``https``, ``www``: :data:`LINK_SYNTAX_WORDS`), since links are judged as links;
- one ``text_contains`` rule per recurring substring of text written without spaces between words
  (Thai, Chinese, ...: :mod:`python_steps.text.substrings`), on the phrases' bar; a substring inside
  which a shorter kept one lies is dropped; one precise only thanks to an edge character gets a
  ``substring_edge:`` pattern id (promotion's kind ``substring_common``). The word tokenizer sees
  such text as whole clauses;
- generalizations of entities, counted on the mining window from the entity arrays of
  ``int_messages_enriched``: a phone number range (``phone starts with 0871``: 3 to 5 leading
  digits shared by at least ``min_prefix_numbers`` distinct spam numbers; the shortest strong
  prefix of a branch wins) and the presence of an entity kind (``has a short code``); same bar as
  single signals. They catch the numbers and codes of a campaign that the mining window never saw;
- conjunctions ``A AND B`` for signals that are suspicious but not precise enough alone, and for
  single common words (which never activate alone): the partners B are the co-occurring signals
  (on the mining window, ``int_message_signals_extracted``) that make the pair clear the bar, the
  best ``max_partners_per_base`` of them (Wilson lower bound, then spam); counted as a sparse product.
  In text without spaces the n-grams are whole clauses, so a base's partners also include the
  closed recurring substrings of its own spam (``domain = bit.ly AND text contains "..."``).

Then: duplicates merged (same canonical rule id), subsumed rules dropped (a conjunction when one of
its parts is already a rule; a phrase when a shorter phrase inside it is), a complexity budget, and
at most ``max_rules`` rules, ranked by (Wilson lower bound, spam count, rule id). Every draft goes
through ``parse_rule`` (validation) and the one compiler. Same data and config, same rules, byte
for byte: every query and list is ordered, nothing reads the clock.

:func:`write_drafts` upserts ``patas.rule_drafts`` (a new version only when the compiled form of a
rule id changes), ``patas.rule_signal_clauses`` and ``patas.rule_counterexamples`` (per rule, the
ham it matches and the nearest ham it does not: ham sharing the most of the signals typical of its
spam hits).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from python_steps import rules as rl
from python_steps import tables
from python_steps.metrics import wilson_lower_bound
from python_steps.mining import reuse, signal_matrix
from python_steps.rules.compiler import ENTITY_COLUMNS
from python_steps.text import substrings as subs
from python_steps.text.common_words import phrase_is_common

CANDIDATES = "marts.stage1_candidates"
SIGNALS = "intermediate.int_message_signals_extracted"
WINDOWED = "intermediate.int_messages_windowed"

ENTITY_KINDS = ("domain", "phone", "handle", "short_code", "email", "signature")


@dataclass(frozen=True)
class DraftingConfig:
    min_spam_count: int = 3
    min_spam_share: float = 0.95
    max_phrase_ham_count: int = 1
    max_phrase_words: int = 3
    # conjunctions: base signals with at least this spam share (but below the bar) get a partner
    min_conjunction_base_share: float = 0.5
    max_conjunction_bases: int = 200
    # a base signal gets up to this many partners (a carrier such as a link shortener is shared by
    # many campaigns: each partner names one of them)
    max_partners_per_base: int = 1
    partner_kinds: tuple[str, ...] = ("ngram", *ENTITY_KINDS)
    max_complexity: int = 4  # leaves + depth: a leaf is 2, a two-leaf conjunction 4
    counterexamples: int = 3
    profile_signals: int = 20
    # generalizations: phone prefixes of these lengths, shared by this many distinct spam numbers
    phone_prefix_lengths: tuple[int, ...] = (3, 4, 5)
    min_prefix_numbers: int = 3
    presence_kinds: tuple[str, ...] = ("url", "phone", "short_code", "handle", "email")
    # languages of the general-language word list: a single common word is drafted as a rule (for
    # review) and also paired with partners, since alone it never activates automatically
    languages: tuple[str, ...] = ("en",)
    # text without spaces between words (Thai, Chinese, ...): recurring substrings of its runs
    # (python_steps.text.substrings) become ``text_contains`` rules, on the mining window's first
    # ``max_substring_messages`` labelled messages that hold such text; 0 turns them off
    substring_min_chars: int = 4
    max_substring_messages: int = 50_000


@dataclass(frozen=True)
class DraftedRule:
    rule_id: str
    rule: rl.Rule
    rule_json: dict[str, Any]
    rule_canonical: str
    description: str
    sql_expression: str
    regex: str | None
    evaluation_kind: str
    complexity: int
    pattern_id: str
    spam_count: int
    ham_count: int
    clauses: list[tuple[int, str, str]] | None = field(default=None, compare=False)
    origin: str = "pattern_mining"

    @property
    def lower_bound(self) -> float:
        return wilson_lower_bound(self.spam_count, self.spam_count + self.ham_count)


def ensure_schema(conn: psycopg.Connection) -> None:
    tables.ensure_all(conn)


def _leaf_json(kind: str, value: str) -> dict[str, Any]:
    if kind == "ngram":
        return {"kind": "text_phrase", "value": value}
    return {"kind": kind, "op": "eq", "value": value}


def _make(rule_json: dict[str, Any], pattern_id: str, spam: int, ham: int) -> DraftedRule | None:
    try:
        rule = rl.parse_rule(rule_json)
    except rl.RuleError:
        return None  # a signal value the rule language refuses (e.g. a 2-digit "phone"): skip it
    clauses = rl.signal_clauses(rule)
    return DraftedRule(
        rule_id=rl.rule_id(rule),
        rule=rule,
        rule_json=rl.to_json(rule),
        rule_canonical=rl.canonical_json(rule),
        description=rl.describe(rule),
        sql_expression=rl.compile_sql_predicate(rule),
        regex=rl.to_python_regex(rule),
        evaluation_kind="signal" if clauses is not None else "predicate",
        complexity=rl.complexity(rule)["score"],
        pattern_id=pattern_id,
        spam_count=spam,
        ham_count=ham,
        clauses=clauses,
    )


def _strong(spam: int, ham: int, cfg: DraftingConfig) -> bool:
    return spam >= cfg.min_spam_count and spam / (spam + ham) >= cfg.min_spam_share


def _read_candidates(conn: psycopg.Connection) -> list[tuple[str, str, int, int]]:
    rows = conn.execute(
        f"""
        select signal_kind, signal_value, spam_count::bigint, ham_count::bigint
        from {CANDIDATES}
        """
    ).fetchall()
    return sorted((k, v, int(s), int(h)) for k, v, s, h in rows)  # code-point order


def _conjunction_pairs(
    sm: signal_matrix.MiningSignals, bases: list[tuple[str, str]], cfg: DraftingConfig
) -> list[tuple[str, str, str, str, int, int]]:
    """(base kind, base value, partner kind, partner value, spam, ham) on the mining window, for
    every base signal and co-occurring partner with at least ``min_spam_count`` joint spam.

    Counted as sparse products (bases x messages) @ (messages x partner signals), spam and ham
    apart, on the labelled mining window read once (:mod:`python_steps.mining.signal_matrix`)."""
    import numpy as np
    from scipy import sparse

    if not bases:
        return []
    cols = [sm.numbers.get(b, -1) for b in bases]
    known = [(i, c) for i, c in enumerate(cols) if c >= 0]
    if not known or not sm.names:
        return []
    by_signal = sm.matrix.tocsc()
    picked = by_signal[:, [c for _, c in known]].T.tocoo()  # (known bases x messages)
    base_no = np.array([i for i, _ in known], dtype=np.int64)[picked.row]
    partner = np.array([k in cfg.partner_kinds for k in sm.kinds], dtype=bool)
    carried = _nonzero(sm.matrix @ sparse.diags(partner.astype(np.int64), dtype=np.int64))

    def product(spam: bool) -> Any:
        sel = sm.is_spam[picked.col] == spam
        hits = sparse.csr_matrix(
            (picked.data[sel], (base_no[sel], picked.col[sel])), shape=(len(bases), len(sm.message_ids))
        )
        return (hits @ carried).tocsr()

    spam_counts, ham_counts = product(True), product(False)
    coo = spam_counts.tocoo()
    keep = coo.data >= cfg.min_spam_count
    rows, cols_, spam = coo.row[keep], coo.col[keep], coo.data[keep]
    ham = np.asarray(ham_counts[rows, cols_]).ravel() if len(rows) else np.zeros(0, dtype=np.int64)
    out = []
    for b, c, sp, hm in zip(rows.tolist(), cols_.tolist(), spam.tolist(), ham.tolist(), strict=True):
        bk, bv = bases[b]
        pk, pv = sm.names[c]
        if (pk, pv) != (bk, bv):
            out.append((bk, bv, pk, pv, int(sp), int(hm)))
    return sorted(out)  # code-point order


def _unspaced_messages(conn: psycopg.Connection, cfg: DraftingConfig) -> list[tuple[int, str, bool]]:
    """(message id, normalized text, is spam) of the labelled mining window's messages that hold
    unspaced text, at most ``max_substring_messages`` of them in message order."""
    if cfg.max_substring_messages <= 0:
        return []
    rows = conn.execute(
        f"""
        select m.message_id, m.normalized_text, m.is_spam
        from {WINDOWED} as m
        where m.window_name = 'mining' and m.is_spam is not null and m.normalized_text ~ %s
        order by m.message_id
        limit %s
        """,
        (subs.UNSPACED_CLASS_POSTGRES, cfg.max_substring_messages),
    ).fetchall()
    return [(int(m), t, bool(is_spam)) for m, t, is_spam in rows]


def _substring_partners(
    conn: psycopg.Connection,
    unspaced: list[tuple[int, str, bool]],
    bases: list[tuple[str, str]],
    skip: Callable[[str], bool],
    cfg: DraftingConfig,
) -> list[tuple[str, str, str, int, int]]:
    """(base kind, base value, substring, spam, ham): per conjunction base, the best substring of
    unspaced text partnering it (a closed recurring substring of the base's own spam, on the
    phrases' bar within the base's messages; ranked as signal partners are), unless ``skip`` says a
    single rule already hits it. Text without spaces has no useful word partners: its n-grams are
    whole clauses."""
    if not unspaced or not bases:
        return []
    texts = {m: (t, is_spam) for m, t, is_spam in unspaced}
    rows = conn.execute(
        f"""
        select s.signal_kind, s.signal_value, s.message_id
        from {SIGNALS} as s
        inner join unnest(%s::text[], %s::text[]) as b (kind, value)
            on b.kind = s.signal_kind and b.value = s.signal_value
        where s.message_id = any(%s)
        order by 1, 2, 3
        """,
        ([k for k, _ in bases], [v for _, v in bases], sorted(texts)),
    ).fetchall()
    by_base: dict[tuple[str, str], list[int]] = {}
    for kind, value, mid in rows:
        by_base.setdefault((kind, value), []).append(int(mid))
    sub_cfg = subs.SubstringConfig(min_chars=cfg.substring_min_chars, min_support=cfg.min_spam_count)
    out = []
    for (bk, bv), mids in sorted(by_base.items()):
        spam_texts = [texts[m][0] for m in mids if texts[m][1]]
        if len(spam_texts) < cfg.min_spam_count:
            continue
        ham_texts = [texts[m][0] for m in mids if not texts[m][1]]
        ranked = sorted(
            (-wilson_lower_bound(sp, sp + hm), -sp, value, hm)
            for value, sp, hm in subs.recurring_substrings(spam_texts, ham_texts, sub_cfg)
            if hm <= cfg.max_phrase_ham_count and _strong(sp, hm, cfg) and not skip(value)
        )
        out.extend(
            (bk, bv, value, -neg_sp, hm) for _, neg_sp, value, hm in ranked[: cfg.max_partners_per_base]
        )
    return out


def _substring_candidates(
    spam_texts: list[str], ham_texts: list[str], cfg: DraftingConfig
) -> list[tuple[str, int, int]]:
    """(substring, spam, ham) on the labelled mining window for the closed recurring substrings of
    unspaced text (see :mod:`python_steps.text.substrings`); empty when no message has any."""
    if not spam_texts:
        return []
    sub_cfg = subs.SubstringConfig(min_chars=cfg.substring_min_chars, min_support=cfg.min_spam_count)
    return subs.recurring_substrings(spam_texts, ham_texts, sub_cfg)


def _edge_dependent(
    values: list[str], spam_texts: list[str], ham_texts: list[str], cfg: DraftingConfig
) -> set[str]:
    """The substrings one of whose one-character-shorter cores would not clear drafting's phrase
    bar (>= min spam, >= min share, <= max_phrase_ham ham): precise only thanks to an edge character."""
    cores = {v: subs.edge_cores(v) for v in values}
    counts = subs.containing_counts((c for cs in cores.values() for c in cs), spam_texts, ham_texts)

    def clears(spam: int, ham: int) -> bool:
        return ham <= cfg.max_phrase_ham_count and _strong(spam, ham, cfg)

    return {v for v, cs in cores.items() if not all(clears(*counts[c]) for c in cs)}


def _generalizations(
    conn: psycopg.Connection, cfg: DraftingConfig
) -> list[tuple[dict[str, Any], str, int, int]]:
    """(rule json, pattern id, spam, ham) for strong phone prefixes and entity presence on the
    labelled mining window; prefixes subsumed by a shorter strong prefix are left out."""
    lengths = sorted(set(cfg.phone_prefix_lengths))
    kinds = [k for k in cfg.presence_kinds if k in ENTITY_COLUMNS]
    presence = ",\n".join(
        f"count(*) filter (where cardinality(m.{ENTITY_COLUMNS[k]}) > 0 and m.is_spam), "
        f"count(*) filter (where cardinality(m.{ENTITY_COLUMNS[k]}) > 0 and not m.is_spam)"
        for k in kinds
    )
    mining = f"""
        select m.message_id, m.is_spam, m.phones, m.short_codes, m.urls, m.handles, m.emails
        from {WINDOWED} as m
        where m.window_name = 'mining' and m.is_spam is not null
    """
    out: list[tuple[dict[str, Any], str, int, int]] = []
    if kinds:
        row = conn.execute(f"select {presence} from ({mining}) as m").fetchone()
        for i, k in enumerate(kinds):
            spam, ham = int(row[2 * i]), int(row[2 * i + 1])
            if _strong(spam, ham, cfg):
                out.append(({"kind": k, "op": "present"}, f"generalization:present:{k}", spam, ham))
    if not lengths:
        return out
    rows = conn.execute(
        f"""
        with phones as (
            select distinct m.message_id, m.is_spam, p.v as phone
            from ({mining}) as m
            cross join lateral unnest(m.phones) as p (v)
        ),
        prefixes as (
            select distinct ph.message_id, ph.is_spam, ph.phone, left(ph.phone, n.len) as prefix
            from phones as ph
            cross join unnest(%(lengths)s::int[]) as n (len)
            where length(ph.phone) > n.len
        )
        select
            prefix,
            count(distinct message_id) filter (where is_spam),
            count(distinct message_id) filter (where not is_spam),
            count(distinct phone) filter (where is_spam)
        from prefixes
        group by prefix
        having count(distinct phone) filter (where is_spam) >= %(min_numbers)s
        """,
        {"lengths": lengths, "min_numbers": cfg.min_prefix_numbers},
    ).fetchall()
    strong = sorted(
        (prefix, int(spam), int(ham)) for prefix, spam, ham, _ in rows if _strong(int(spam), int(ham), cfg)
    )
    kept: list[str] = []
    for prefix, spam, ham in sorted(strong, key=lambda r: (len(r[0]), r[0])):
        if any(prefix.startswith(k) for k in kept):
            continue  # a shorter strong prefix already covers this range
        kept.append(prefix)
        out.append(
            (
                {"kind": "phone", "op": "prefix", "value": prefix},
                f"generalization:phone_prefix:{prefix}",
                spam,
                ham,
            )
        )
    return sorted(out, key=lambda g: g[1])


# The words a link's own syntax puts among the word tokens ("https://lin.ee/x" gives https lin ee x).
# A phrase holding one spells part of a link, which the url, host and domain signals judge with the
# record of their own kind; drafted as a phrase it would pass for a phrase of rare words (a link
# shortener's domain shared with ham, REVIEW_ONLY as a domain, became SAFE_AUTO as "https lin").
LINK_SYNTAX_WORDS = frozenset({"http", "https", "www"})


def spells_link(phrase: str) -> bool:
    """Whether a phrase (space-separated word tokens) holds a word of a link's own syntax."""
    return not LINK_SYNTAX_WORDS.isdisjoint(phrase.split(" "))


def _sub_phrases(words: list[str]) -> list[str]:
    n = len(words)
    return [" ".join(words[i:j]) for i in range(n) for j in range(i + 1, n + 1) if (i, j) != (0, n)]


def draft_rules(
    conn: psycopg.Connection,
    *,
    run_id: str,
    max_rules: int,
    config: DraftingConfig | None = None,
    signals: signal_matrix.MiningSignals | None = None,
) -> list[DraftedRule]:
    """Draft typed rules from the stage-1 candidates; sorted by rule id. ``signals``: the labelled
    mining window as :func:`signal_matrix.load` reads it (read here when not given and needed)."""
    cfg = config or DraftingConfig()
    _ = run_id  # recorded by write_drafts; drafting itself depends only on the data and config
    singles: dict[str, DraftedRule] = {}
    bases: list[tuple[str, str]] = []
    for kind, value, spam, ham in _read_candidates(conn):
        if kind not in ENTITY_KINDS and kind != "ngram":
            continue
        if kind == "ngram" and spells_link(value):
            continue  # a link is judged as a link (url, host, domain)
        if kind == "ngram" and (
            ham > cfg.max_phrase_ham_count or len(value.split(" ")) > cfg.max_phrase_words
        ):
            if spam + ham > 0 and spam / (spam + ham) >= cfg.min_conjunction_base_share:
                bases.append((kind, value))
            continue
        if _strong(spam, ham, cfg):
            d = _make(_leaf_json(kind, value), f"signal:{kind}:{value}", spam, ham)
            if d is not None:
                _keep(singles, d)
            if kind == "ngram" and " " not in value and phrase_is_common(value, cfg.languages):
                bases.append((kind, value))  # a common word alone is never SAFE_AUTO: pair it too
        elif spam >= cfg.min_spam_count and spam / (spam + ham) >= cfg.min_conjunction_base_share:
            bases.append((kind, value))

    for rule_json, pattern_id, spam, ham in _generalizations(conn, cfg):
        d = _make(rule_json, pattern_id, spam, ham)
        if d is not None:
            _keep(singles, d)

    # Substrings of unspaced text: the precise ones, shortest first; one inside which a shorter
    # kept substring lies hits a subset of it and is dropped (as phrases below).
    # One precise only thanks to an edge character is recorded as such (``substring_edge:``):
    # promotion gives it no prior from its kind, as a phrase of common words.
    unspaced = _unspaced_messages(conn, cfg)
    spam_texts = [t for _, t, is_spam in unspaced if is_spam]
    ham_texts = [t for _, t, is_spam in unspaced if not is_spam]
    kept_subs: list[tuple[str, int, int]] = []
    for value, spam, ham in sorted(
        _substring_candidates(spam_texts, ham_texts, cfg), key=lambda r: (len(r[0]), r[0])
    ):
        precise = ham <= cfg.max_phrase_ham_count and _strong(spam, ham, cfg)
        if precise and not any(k in value for k, _, _ in kept_subs):
            kept_subs.append((value, spam, ham))
    edge = _edge_dependent([v for v, _, _ in kept_subs], spam_texts, ham_texts, cfg)
    for value, spam, ham in kept_subs:
        pattern = f"substring_edge:{value}" if value in edge else f"substring:{value}"
        d = _make({"kind": "text_contains", "value": value}, pattern, spam, ham)
        if d is not None:
            _keep(singles, d)

    # Phrases: drop one when a shorter phrase inside it is already a rule (it hits a superset), unless
    # that shorter phrase is a single common word (it never activates alone).
    phrase_values = {
        d.rule.value
        for d in singles.values()
        if isinstance(d.rule, rl.Leaf)
        and d.rule.kind == "text_phrase"
        and not (" " not in d.rule.value and phrase_is_common(d.rule.value, cfg.languages))
    }
    for rid in sorted(singles):
        d = singles[rid]
        words = (
            d.rule.value.split(" ") if isinstance(d.rule, rl.Leaf) and d.rule.kind == "text_phrase" else []
        )
        if any(p in phrase_values for p in _sub_phrases(words)):
            del singles[rid]

    single_signals = {
        (c[1], c[2])
        for d in singles.values()
        if d.clauses and len(d.clauses) == 1
        for c in d.clauses
        if not (c[1] == "ngram" and " " not in c[2] and phrase_is_common(c[2], cfg.languages))
    }  # the single rules that stand alone: a common word does not
    bases = sorted(set(bases))[: cfg.max_conjunction_bases]
    # Per base, its partners ranked by (Wilson lower bound, spam, partner); only the best
    # max_partners_per_base of them become drafts (compiled when kept, not before).
    best: dict[tuple[str, str], list[tuple[tuple[float, int, str, str], dict[str, Any], str, int, int]]] = {}
    phrase_values = {v for k, v in single_signals if k == "ngram"}

    def covered(kind: str, value: str) -> bool:
        """An existing single rule already hits every message carrying this signal."""
        if (kind, value) in single_signals:
            return True
        return kind == "ngram" and any(p in phrase_values for p in _sub_phrases(value.split(" ")))

    if bases and signals is None:
        signals = signal_matrix.load(conn)
    for bk, bv, pk, pv, spam, ham in _conjunction_pairs(signals, bases, cfg) if signals is not None else ():
        if (
            (pk == "ngram" and spells_link(pv))
            or covered(pk, pv)
            or covered(bk, bv)
            or not _strong(spam, ham, cfg)
        ):
            continue  # subsumed by an existing rule, or still not precise enough
        if bk == pk == "ngram" and (f" {bv} " in f" {pv} " or f" {pv} " in f" {bv} "):
            continue  # one phrase inside the other: the pair is just the longer phrase
        if pk == "ngram" and pv.count(" ") + 1 > cfg.max_phrase_words:
            continue
        best.setdefault((bk, bv), []).append(
            (
                (-wilson_lower_bound(spam, spam + ham), -spam, pk, pv),
                {"all": [_leaf_json(bk, bv), _leaf_json(pk, pv)]},
                f"conjunction:{bk}:{bv}+{pk}:{pv}",
                spam,
                ham,
            )
        )
    kept_values = [v for v, _, _ in kept_subs]
    for bk, bv, value, spam, ham in _substring_partners(
        conn, unspaced, [b for b in bases if not covered(*b)], lambda v: any(k in v for k in kept_values), cfg
    ):
        best.setdefault((bk, bv), []).append(
            (
                (-wilson_lower_bound(spam, spam + ham), -spam, "text_contains", value),
                {"all": [_leaf_json(bk, bv), {"kind": "text_contains", "value": value}]},
                f"conjunction:{bk}:{bv}+substring:{value}",
                spam,
                ham,
            )
        )
    drafts = dict(singles)
    for k in sorted(best):
        made = 0
        for _, rule_json, pattern_id, spam, ham in sorted(best[k], key=lambda x: x[0]):
            if made >= cfg.max_partners_per_base:
                break
            d = _make(rule_json, pattern_id, spam, ham)
            if d is not None:  # a pair the rule language refuses: the next best
                _keep(drafts, d)
                made += 1

    kept = [d for d in drafts.values() if d.complexity <= cfg.max_complexity]
    kept.sort(key=lambda d: (-d.lower_bound, -d.spam_count, d.rule_id))
    return sorted(kept[:max_rules], key=lambda d: d.rule_id)


def _keep(drafts: dict[str, DraftedRule], d: DraftedRule) -> None:
    """Merge duplicates: one draft per rule id, the best-supported origin pattern wins."""
    old = drafts.get(d.rule_id)
    if old is None or (-d.spam_count, d.pattern_id) < (-old.spam_count, old.pattern_id):
        drafts[d.rule_id] = d


def ngram_vocabulary(conn: psycopg.Connection, phrases: list[str]) -> set[str]:
    """The phrases that have ``ngram`` rows in ``int_message_signals_extracted``.

    The extractor keeps only the vocabulary n-grams (seen in at least ``patas_min_spam_count``
    spam messages, over all labelled data) and, for those, a row for every message carrying them.
    So a phrase rule may be evaluated through its ``ngram`` signal only when the phrase is in the
    vocabulary; elsewhere the signal path would see no message at all (neither spam nor ham) and a
    hand-written or LLM phrase would look harmless. The vocabulary only grows, so the answer stays
    true for later runs.
    """
    values = sorted(set(phrases))
    if not values or conn.execute("select to_regclass(%s)", (SIGNALS,)).fetchone()[0] is None:
        return set()
    rows = conn.execute(
        f"""
        select v.phrase
        from unnest(%s::text[]) as v (phrase)
        where exists (
            select 1 from {SIGNALS} as s where s.signal_value = v.phrase and s.signal_kind = 'ngram'
        )
        """,
        (values,),
    ).fetchall()
    return {r[0] for r in rows}


def signal_evaluable_clauses(
    conn: psycopg.Connection, clauses: list[tuple[int, str, str]] | None
) -> list[tuple[int, str, str]] | None:
    """``clauses`` when shadow evaluation may use them, else None (evaluate the predicate)."""
    if not clauses:
        return None
    phrases = [v for _, k, v in clauses if k == "ngram"]
    if phrases and not set(phrases) <= ngram_vocabulary(conn, phrases):
        return None
    return clauses


def _vocabulary_checked(conn: psycopg.Connection, drafts: list[DraftedRule]) -> list[DraftedRule]:
    phrases = [v for d in drafts for _, k, v in d.clauses or () if k == "ngram"]
    known = ngram_vocabulary(conn, phrases)
    out = []
    for d in drafts:
        if d.clauses and not {v for _, k, v in d.clauses if k == "ngram"} <= known:
            d = replace(d, evaluation_kind="predicate", clauses=None)
        out.append(d)
    return out


def write_drafts(
    conn: psycopg.Connection,
    drafts: list[DraftedRule],
    run_id: str,
    *,
    config: DraftingConfig | None = None,
    signals: signal_matrix.MiningSignals | None = None,
) -> dict[str, int]:
    """Upsert drafts, their signal clauses and counter-examples; returns counts. ``signals``: as
    for :func:`draft_rules` (the drafting step reads the window once and passes it to both).

    A draft whose phrases are not all in the n-gram vocabulary is stored as a predicate rule
    (:func:`ngram_vocabulary`)."""
    cfg = config or DraftingConfig()
    inserted = 0
    drafts = _vocabulary_checked(conn, drafts)
    with conn.transaction():
        ensure_schema(conn)
        for d in sorted(drafts, key=lambda x: x.rule_id):
            row = conn.execute(
                """
                select version, rule_canonical, description, sql_expression, regex, evaluation_kind
                from patas.rule_drafts where rule_id = %s order by version desc limit 1
                """,
                (d.rule_id,),
            ).fetchone()
            current = (d.rule_canonical, d.description, d.sql_expression, d.regex, d.evaluation_kind)
            if row is not None and tuple(row[1:]) == current:
                continue
            conn.execute(
                """
                insert into patas.rule_drafts (rule_id, version, rule_json, rule_canonical, description,
                    sql_expression, regex, origin, pattern_id, evaluation_kind, complexity, drafted_run_id)
                values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                """,
                (
                    d.rule_id,
                    1 if row is None else row[0] + 1,
                    Jsonb(d.rule_json),
                    d.rule_canonical,
                    d.description,
                    d.sql_expression,
                    d.regex,
                    d.origin,
                    d.pattern_id,
                    d.evaluation_kind,
                    d.complexity,
                    run_id,
                ),
            )
            inserted += 1
        ids = [d.rule_id for d in drafts]
        conn.execute("delete from patas.rule_signal_clauses where rule_id = any(%s)", (ids,))
        clause_rows = sorted((d.rule_id, *c) for d in drafts if d.clauses for c in d.clauses)
        with conn.cursor() as cur:
            cur.executemany(
                "insert into patas.rule_signal_clauses (rule_id, clause_no, signal_kind, signal_value) "
                "values (%s, %s, %s, %s)",
                clause_rows,
            )
        examples = store_counterexamples(conn, drafts, run_id, cfg, signals)
    return {
        "drafts": len(drafts),
        "versions_inserted": inserted,
        "clauses": len(clause_rows),
        "counterexamples": examples,
    }


def store_counterexamples(
    conn: psycopg.Connection,
    drafts: list[DraftedRule],
    run_id: str,
    cfg: DraftingConfig,
    signals: signal_matrix.MiningSignals | None = None,
) -> int:
    """Per signal-evaluable rule, on the mining window: the ham it matches (lowest ids first) and
    the nearest ham it does not match (most signals shared with its spam hits' typical signals).

    Counted in memory on the labelled mining window read once (:mod:`python_steps.mining.signal_matrix`):
    a rule's hits are the messages where one of its clauses has all its signals, (messages x
    signals) @ (signals x clauses); its profile (:func:`_profile_signals`) and its nearest ham
    (:func:`_rank_nearest_ham`) are sparse products too. Each used to read the signal rows of the
    messages it needed again (at 1M messages, 4.5M index probes for the hits alone)."""
    import numpy as np
    from scipy import sparse

    ids = [d.rule_id for d in drafts]
    conn.execute("delete from patas.rule_counterexamples where rule_id = any(%s)", (ids,))
    clause_rows = sorted((d.rule_id, *c) for d in drafts if d.clauses for c in d.clauses)
    if not clause_rows:
        return 0
    sm = signal_matrix.load(conn) if signals is None else signals
    rule_ids = sorted({r for r, _, _, _ in clause_rows})  # code-point order; only an index here
    rule_no = {r: i for i, r in enumerate(rule_ids)}
    clause_keys = sorted({(r, c) for r, c, _, _ in clause_rows})
    clause_no = {key: i for i, key in enumerate(clause_keys)}
    clause_rule = np.array([rule_no[r] for r, _ in clause_keys], dtype=np.int64)
    size = np.zeros(len(clause_keys), dtype=np.int64)
    k_rows, k_cols = [], []
    for r, c, kind, value in clause_rows:
        size[clause_no[(r, c)]] += 1
        if (kind, value) in sm.numbers:  # a signal the window never carries: its clause never matches
            k_rows.append(sm.numbers[(kind, value)])
            k_cols.append(clause_no[(r, c)])
    n_messages, n_signals = len(sm.message_ids), len(sm.names)
    clause_signals = sparse.csr_matrix(
        (np.ones(len(k_rows), dtype=np.int64), (k_rows, k_cols)), shape=(n_signals, len(clause_keys))
    )
    matched = (sm.matrix @ clause_signals).tocoo()  # per message and clause: signal rows matched
    full = matched.data == size[matched.col]
    keys = _sorted_unique(clause_rule[matched.col[full]] * n_messages + matched.row[full])
    hit_rule, hit_msg = keys // max(n_messages, 1), keys % max(n_messages, 1)  # by rule, then message
    hits = sparse.csr_matrix(
        (np.ones(len(keys), dtype=np.int64), (hit_rule, hit_msg)), shape=(len(rule_ids), n_messages)
    )
    spam_hits = _nonzero(hits @ sparse.diags(sm.is_spam.astype(np.int64), dtype=np.int64))
    profile = _profile_signals(spam_hits, sm, clause_signals, clause_rule, cfg.profile_signals)
    ham_hits = _nonzero(hits @ sparse.diags((~sm.is_spam).astype(np.int64), dtype=np.int64))
    nearest = _rank_nearest_ham(profile, ham_hits, sm, cfg.counterexamples)

    k = cfg.counterexamples
    rows: list[tuple[str, str, int, int, int | None]] = []
    ham_coo = ham_hits.tocoo()
    order = np.lexsort((ham_coo.col, ham_coo.row))
    last, rank = -1, 0
    for r, m in zip(ham_coo.row[order].tolist(), ham_coo.col[order].tolist(), strict=True):
        rank = rank + 1 if r == last else 1
        last = r
        if rank <= k:
            rows.append((rule_ids[r], "matched_ham", rank, int(sm.message_ids[m]), None))
    rows.extend((rule_ids[r], "nearest_unmatched_ham", rk, mid, sh) for r, rk, mid, sh in nearest if rk <= k)
    conn.execute("drop table if exists pg_temp.ce_rows")
    conn.execute(
        "create temp table ce_rows (rule_id text, example_kind text, rank bigint, message_id bigint,"
        " shared_signal_count int)"
    )
    with (
        conn.cursor() as cur,
        cur.copy(
            "copy ce_rows (rule_id, example_kind, rank, message_id, shared_signal_count) from stdin"
        ) as cp,
    ):
        for row in rows:
            cp.write_row(row)
    cur = conn.execute(
        """
        insert into patas.rule_counterexamples
            (rule_id, example_kind, rank, message_id, shared_signal_count, drafted_run_id)
        select rule_id, example_kind, rank, message_id, shared_signal_count, %(run)s
        from ce_rows
        order by 1, 2, 3
        """,
        {"run": run_id},
    )
    inserted = cur.rowcount
    conn.execute("drop table if exists pg_temp.ce_rows")
    return inserted


def _sorted_unique(values: Any) -> Any:
    """``np.unique(values)`` for a 1-d integer array (ascending distinct values), by one sort: numpy
    2.3+ finds them with a hash table, many times slower on millions of values (docs/benchmarks.md)."""
    import numpy as np

    out = np.sort(values)
    return out[np.concatenate(([True], out[1:] != out[:-1]))] if len(out) else out


def _profile_signals(spam_hits: Any, sm: signal_matrix.MiningSignals, clause_signals: Any,
                     clause_rule: Any, k: int) -> Any:  # fmt: skip
    """Per rule, the ``k`` signals most frequent among its mining-window spam hits, its own clause
    signals left out (ties: signal kind, then value, in code-point order = signal number), as a
    (rules x signals) matrix of ones.

    Counted as a sparse product (rules x spam messages) @ (spam messages x signals): each spam
    message's signals are read once, however many rules hit it."""
    import numpy as np
    from scipy import sparse

    n_rules, n_signals = spam_hits.shape[0], len(sm.names)
    if k <= 0:
        return sparse.csr_matrix((n_rules, n_signals), dtype=np.int64)
    own = clause_signals.tocoo()
    own_rows = [[] for _ in range(n_rules)]
    for r, c in zip(clause_rule[own.col].tolist(), own.row.tolist(), strict=True):
        own_rows[r].append(c)
    top = _top_per_row(_nonzero(spam_hits @ sm.matrix), k, own_rows)
    return sparse.csr_matrix(
        (np.ones(len(top), dtype=np.int64), ([r for r, _, _, _ in top], [c for _, _, c, _ in top])),
        shape=(n_rules, n_signals),
    )


def _nonzero(matrix: Any) -> Any:
    """``matrix`` as CSR without stored zeros (a product with a 0/1 diagonal keeps them)."""
    out = matrix.tocsr()
    out.eliminate_zeros()
    return out


def _top_per_row(
    counts: Any, k: int, excluded: list[list[int]], first_row: int = 0
) -> list[tuple[int, int, int, int]]:
    """(row, rank, column, count): per row of the CSR ``counts``, the ``k`` largest counts (ties:
    the lower column first), leaving out the columns ``excluded[first_row + row]``. A partial
    selection per row (the row's top ``k`` plus as many as may be excluded), not a sort of all."""
    import numpy as np

    out: list[tuple[int, int, int, int]] = []
    width = counts.shape[1]
    for i in range(counts.shape[0]):
        lo, hi = counts.indptr[i], counts.indptr[i + 1]
        if lo == hi:
            continue
        cols = counts.indices[lo:hi].astype(np.int64)
        values = counts.data[lo:hi].astype(np.int64)
        key = values * width - cols  # larger count first, then the lower column; unique in a row
        skip = set(excluded[first_row + i])
        m = min(len(key), k + len(skip))
        pick = np.argpartition(-key, m - 1)[:m] if len(key) > m else np.arange(len(key))
        pick = pick[np.argsort(-key[pick])]
        ranked = [j for j in pick.tolist() if cols[j] not in skip][:k]
        out.extend((i, rank, int(cols[j]), int(values[j])) for rank, j in enumerate(ranked, start=1))
    return out


NEAREST_RULE_BLOCK = 32  # rules per sparse product: bounds the product's memory


def _rank_nearest_ham(
    profile: Any, ham_hits: Any, sm: signal_matrix.MiningSignals, k: int
) -> list[tuple[int, int, int, int]]:
    """(rule number, rank, message id, shared): per rule, the ``k`` mining-window ham messages it
    does not hit that share the most of its profile signals (ties: lowest message id).

    Counted as a sparse product (rules x signals) @ (signals x ham messages), ``NEAREST_RULE_BLOCK``
    rules at a time; each rule's top ``k`` is a partial selection of its row, not a sort."""
    import numpy as np
    from scipy import sparse

    if k <= 0 or not profile.nnz:
        return []
    ham = _nonzero(sparse.diags((~sm.is_spam).astype(np.int64), dtype=np.int64) @ sm.matrix)
    by_signal = ham.T.tocsr()  # (signals x messages)
    hits = ham_hits.tocsr()
    hit_cols = [hits.indices[hits.indptr[r] : hits.indptr[r + 1]].tolist() for r in range(hits.shape[0])]
    out: list[tuple[int, int, int, int]] = []
    for first in range(0, profile.shape[0], NEAREST_RULE_BLOCK):
        counts = (profile[first : first + NEAREST_RULE_BLOCK] @ by_signal).tocsr()
        counts.eliminate_zeros()
        out.extend(
            (first + i, rank, int(sm.message_ids[col]), shared)
            for i, rank, col, shared in _top_per_row(counts, k, hit_cols, first)
        )
    return out


def make_draft(
    rule_json: dict[str, Any], *, origin: str, pattern_id: str, spam: int = 0, ham: int = 0
) -> DraftedRule | None:
    """A draft from a typed rule proposed elsewhere (stage-2 clusters, the LLM, a person); None when
    the rule does not validate."""
    d = _make(rule_json, pattern_id, spam, ham)
    return None if d is None else replace(d, origin=origin)


def draft_with_stage2(
    conn: psycopg.Connection,
    *,
    run_id: str,
    max_rules: int,
    config: DraftingConfig | None = None,
    llm_config: Any = None,
    signals: signal_matrix.MiningSignals | None = None,
) -> tuple[list[DraftedRule], dict[str, Any]]:
    """Deterministic drafts from stage 1, plus rules proposed from the stage-2 clusters and,
    when ``llm_config`` is given, by the LLM from the clusters' aggregated signals. A proposal
    equal to a deterministic draft keeps the deterministic origin. Sorted by rule id."""
    from python_steps.mining import clustering

    drafts = {
        d.rule_id: d
        for d in draft_rules(conn, run_id=run_id, max_rules=max_rules, config=config, signals=signals)
    }
    info: dict[str, Any] = {"pattern_mining": len(drafts), "semantic": 0, "llm": 0}
    clusters = clustering.load_clusters(conn)
    proposals = clustering.cluster_rules(clusters)
    if clusters:
        proposals += clustering.cover_rules(conn, clusters, drafting=config)
    for p in proposals:
        d = make_draft(
            p["rule"], origin="semantic", pattern_id=f"cluster:{p['cluster_id']}", spam=p["cluster_size"]
        )
        if d is not None and d.rule_id not in drafts:
            drafts[d.rule_id] = d
            info["semantic"] += 1
    if llm_config is not None and clusters:
        from python_steps.mining.llm import LlmDrafter

        outcome = LlmDrafter(conn, llm_config, run_id).draft([c.signals() for c in clusters])
        for p in outcome.proposals:
            d = make_draft(p.rule_json, origin="llm", pattern_id=f"llm:{p.cluster_id}")
            if d is not None and d.rule_id not in drafts:
                drafts[d.rule_id] = d
                info["llm"] += 1
        info["llm_calls"] = dict(sorted(outcome.calls.items()))
        info["llm_tokens"] = outcome.tokens
        info["llm_cost_usd"] = round(outcome.cost_usd, 6)
        info["llm_budget_state"] = outcome.budget_state
        info["llm_warnings"] = list(outcome.warnings)
    return [drafts[k] for k in sorted(drafts)], info


AUDIT_STEP, AUDIT_PASSED = "drafts_audit", "passed"


def audit_stored_drafts_once(conn: psycopg.Connection, run_id: str) -> tuple[list[str], str | None]:
    """:func:`audit_stored_drafts`, or the verdict of an earlier run when it audited exactly these
    drafts with this code and found nothing (``patas.run_step_states``, step ``drafts_audit``; a
    failed audit is never re-used). Returns (problems, why it was re-used, or None when audited)."""
    state = reuse.drafts_audit_state(conn)
    previous = reuse.check(conn, AUDIT_STEP, state, output_state=AUDIT_PASSED)
    if previous.reusable:
        reuse.record(
            conn, run_id, AUDIT_STEP, state, skipped=True, reason=previous.reason, output_state=AUDIT_PASSED
        )
        return [], previous.reason
    problems = audit_stored_drafts(conn)
    reuse.record(conn, run_id, AUDIT_STEP, "" if problems else state, skipped=False, reason=previous.reason,
                 output_state="failed" if problems else AUDIT_PASSED)  # fmt: skip
    return problems, None


def audit_stored_drafts(conn: psycopg.Connection) -> list[str]:
    """Problems with the stored drafts (empty = safe): every typed rule must recompile to exactly its
    stored SQL, and every stored predicate (typed or raw manual SQL) must pass the safety validator."""
    from python_steps.rules import sql_safety

    if not conn.execute("select to_regclass('patas.rule_drafts') is not null").fetchone()[0]:
        return []
    problems: list[str] = []
    rows = conn.execute(
        """
        select distinct on (rule_id) rule_id, version, rule_json, sql_expression
        from patas.rule_drafts order by rule_id, version desc
        """
    ).fetchall()
    for rid, version, rule_json, sql in rows:
        where = f"{rid} v{version}"
        if isinstance(rule_json, dict) and set(rule_json) != {"raw_sql"}:
            try:
                rule = rl.parse_rule(rule_json)
            except rl.RuleError as exc:
                problems.append(f"{where}: stored rule no longer validates: {exc}")
                continue
            if rl.rule_id(rule) != rid:
                problems.append(f"{where}: rule id does not match its canonical form ({rl.rule_id(rule)})")
            if rl.compile_sql_predicate(rule) != sql:
                problems.append(f"{where}: stored SQL differs from the compiler's output")
        verdict = sql_safety.validate_sql(sql, mode="predicate")
        if not verdict.ok:
            problems.append(f"{where}: unsafe SQL: {'; '.join(verdict.reasons)}")
    return problems
