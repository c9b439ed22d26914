"""The evidence promotion weighs: cross-fitted hits, a prior per rule kind, a general-language prior.

Pure functions, no database driver (the store reads the hits and calls these).

**Every labelled message is evidence once** (cross-fitting). The rules are drafted on the mining
window and measured on the evaluation window, as before; the mining window's labelled messages are
split into ``folds`` (time-ordered blocks when the messages carry timestamps, template-hash buckets
otherwise, so copies of one template stay in one fold). A rule drafted from the data is a
deterministic function of its signal, so whether it would have been drafted *without* fold ``f`` is
a question about its counts on the other folds: the drafting bar (:func:`drafting_bar`, the same
one drafting applies) on those counts. When it clears the bar, the rule's hits in fold ``f`` are
out-of-fold evidence: they played no part in drafting it. A rule's evidence is its out-of-fold
mining hits plus all its labelled evaluation-window hits. Rules proposed elsewhere (stage-2
clusters, the LLM, a person) saw the mining window as a whole: only their evaluation hits count.

**Priors by rule kind** (empirical Bayes). Rules of one kind (a link domain, a phone range, a phrase
of rare words, ...) tend to be about as precise as each other, so the record of the *other* rules
of a rule's kind in this run is a prior for it: a beta distribution whose mean is the kind's pooled
out-of-fold precision (leaving the rule itself out, shrunk toward the run's overall precision when
the kind has little evidence) and whose strength is the method-of-moments estimate of how much the
kind's rules agree (between :data:`MIN_PRIOR_STRENGTH` and :data:`MAX_PRIOR_STRENGTH` hits). Four
clean hits of a link-domain rule among clean link-domain rules are strong evidence; four clean hits
of a phrase of common words are not.

**A general-language prior.** A word is *common* when a maintained word-frequency list
(``wordfreq``; for Thai, the Thai National Corpus list of PyThaiNLP) puts it at Zipf 4 or more in
one of the configured languages, or in the one language of its script (Thai script: Thai), at
least 10 uses per million words of general text (python_steps.text.common_words). A phrase made
only of common words borrows nothing from its kind: its prior is uniform (Beta(1, 1)), so it needs
far more evidence of its own; a single common word is never ``SAFE_AUTO``
(:func:`python_steps.lifecycle.profiles.tier_for`). Words in other scripts no configured language
covers are judged rare: set ``PATAS_LANGUAGES`` to the languages of your traffic. Text written without spaces has no word list here; its analogue
is a substring precise only thanks to one edge character (the tail of a word before a common word:
drafting marks it, python_steps.text.substrings), kind ``substring_common``, also with a uniform prior.

The posterior of a rule's precision is Beta(prior + spam hits, prior + ham hits); promotion and the
tiers read its mean and its 95% lower bound (the 2.5% quantile, the same two-sided 95% as the
Wilson bounds elsewhere).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from python_steps.text.common_words import phrase_is_common

MIN_PRIOR_STRENGTH = 2.0
MAX_PRIOR_STRENGTH = 20.0
DEFAULT_PRIOR_STRENGTH = 10.0  # a kind with fewer than MIN_RULES_FOR_STRENGTH rules
MIN_RULES_FOR_STRENGTH = 3
LOWER_QUANTILE = 0.025  # the lower end of a two-sided 95% interval
DEFAULT_FOLDS = 5

COMMON_KINDS = ("word_common", "phrase_common", "conjunction_common", "substring_common")
RULE_KINDS = (
    "domain",
    "url",
    "phone",
    "phone_range",
    "short_code",
    "handle",
    "email",
    "money",
    "template",
    "presence",
    "phrase_rare",
    "phrase_common",
    "substring",
    "substring_common",
    "word_common",
    "conjunction",
    "conjunction_common",
    "compound",
    "cluster",
    "llm",
    "manual",
)
PHRASE_KINDS = ("phrase_rare", "phrase_common", "word_common", "substring", "substring_common")
DRAFTED_ORIGINS = ("pattern_mining",)  # origins whose drafting the bar below reproduces


def rule_kind(
    rule_json: Mapping[str, Any], origin: str, languages: Sequence[str] = ("en",), pattern_id: str = ""
) -> str:
    """The kind a rule's prior is pooled over (one of :data:`RULE_KINDS`). ``pattern_id`` is the
    draft's: drafting marks a substring precise only thanks to an edge character
    (``substring_edge:``, python_steps.text.substrings), which is ``substring_common``."""
    languages = tuple(languages)
    if origin == "semantic":
        return "cluster"
    if origin == "llm":
        return "llm"
    if origin == "manual" or "raw_sql" in rule_json:
        return "manual"
    if "all" in rule_json:
        parts = rule_json["all"]
        if all(
            isinstance(p, Mapping)
            and p.get("kind") == "text_phrase"
            and phrase_is_common(str(p.get("value", "")), languages)
            for p in parts
        ):
            return "conjunction_common"
        return "conjunction"
    if "any" in rule_json or "not" in rule_json:
        return "compound"
    kind, op = rule_json.get("kind"), rule_json.get("op")
    if kind == "text_phrase":
        value = str(rule_json.get("value", ""))
        if phrase_is_common(value, languages):
            return "word_common" if " " not in value.strip() else "phrase_common"
        return "phrase_rare"
    if kind == "text_contains":
        return "substring_common" if pattern_id.startswith("substring_edge:") else "substring"
    if op == "present":
        return "presence"
    if kind == "phone" and op == "prefix":
        return "phone_range"
    if kind == "signature":
        return "template"
    return kind if kind in RULE_KINDS else "compound"


def drafting_bar(
    kind: str, spam: int, ham: int, *, min_spam: int, min_share: float, max_phrase_ham: int
) -> bool:
    """Would drafting keep a rule of ``kind`` with these mining counts (drafting's own bar)."""
    if spam < min_spam or spam + ham == 0 or spam / (spam + ham) < min_share:
        return False
    return not (kind in PHRASE_KINDS and ham > max_phrase_ham)


FoldCounts = Mapping[int, tuple[int, int]]  # fold -> (spam hits, ham hits); fold -1: evaluation window


@dataclass(frozen=True)
class Evidence:
    spam_count: int
    ham_count: int
    folds_used: frozenset[int] = (
        frozenset()
    )  # mining folds whose hits count (the evaluation window always does)


def crossfit_evidence(
    counts: Mapping[str, FoldCounts],
    kinds: Mapping[str, str],
    origins: Mapping[str, str],
    folds: int,
    bar: Callable[[str, int, int], bool],
) -> dict[str, Evidence]:
    """Each rule's out-of-fold evidence (see the module docstring), from its labelled hits counted
    per fold. ``folds`` < 2: the evaluation window only."""
    out: dict[str, Evidence] = {}
    for rid in sorted(kinds):
        by_fold = counts.get(rid, {})
        spam, ham = by_fold.get(-1, (0, 0))
        used: set[int] = set()
        if folds >= 2 and origins.get(rid) in DRAFTED_ORIGINS:
            total_spam = sum(s for f, (s, _) in by_fold.items() if f >= 0)
            total_ham = sum(h for f, (_, h) in by_fold.items() if f >= 0)
            for f in range(folds):
                f_spam, f_ham = by_fold.get(f, (0, 0))
                if (total_spam or total_ham) and bar(kinds[rid], total_spam - f_spam, total_ham - f_ham):
                    used.add(f)
                    spam, ham = spam + f_spam, ham + f_ham
        out[rid] = Evidence(spam, ham, frozenset(used))
    return out


@dataclass(frozen=True)
class Prior:
    kind: str
    alpha: float
    beta: float

    @property
    def mean(self) -> float:
        return self.alpha / (self.alpha + self.beta)

    @property
    def strength(self) -> float:
        return self.alpha + self.beta


def _strength(rows: Sequence[tuple[int, int]], mean: float) -> float:
    """Method-of-moments concentration of a beta-binomial: how much the kind's rules agree."""
    rows = [(s, h) for s, h in rows if s + h > 0]
    if len(rows) < MIN_RULES_FOR_STRENGTH:
        return DEFAULT_PRIOR_STRENGTH
    ps = [s / (s + h) for s, h in rows]
    avg = sum(ps) / len(ps)
    observed = sum((p - avg) ** 2 for p in ps) / (len(ps) - 1)
    noise = mean * (1 - mean) * sum(1 / (s + h) for s, h in rows) / len(rows)
    between = observed - noise
    if between <= 0:
        return MAX_PRIOR_STRENGTH
    return max(MIN_PRIOR_STRENGTH, min(MAX_PRIOR_STRENGTH, mean * (1 - mean) / between - 1))


def kind_priors(kinds: Mapping[str, str], evidence: Mapping[str, Evidence]) -> dict[str, Prior]:
    """Per rule, the beta prior of its kind in this run, its own evidence left out."""
    counts = {rid: (evidence[rid].spam_count, evidence[rid].ham_count) for rid in kinds if rid in evidence}
    all_spam = sum(s for s, _ in counts.values())
    all_ham = sum(h for _, h in counts.values())
    by_kind: dict[str, list[str]] = {}
    for rid in sorted(counts):
        by_kind.setdefault(kinds[rid], []).append(rid)
    out: dict[str, Prior] = {}
    for kind, rids in sorted(by_kind.items()):
        k_spam = sum(counts[r][0] for r in rids)
        k_ham = sum(counts[r][1] for r in rids)
        for rid in rids:
            s_own, h_own = counts[rid]
            if kind in COMMON_KINDS:
                out[rid] = Prior(kind, 1.0, 1.0)
                continue
            g_mean = (all_spam - s_own + 1) / (all_spam + all_ham - s_own - h_own + 2)
            others = [counts[r] for r in rids if r != rid]
            s, h = k_spam - s_own, k_ham - h_own
            strength = _strength(others, g_mean)
            mean = (s + strength * g_mean) / (s + h + strength)  # the kind, shrunk to the run
            mean = min(max(mean, 1e-6), 1 - 1e-6)
            out[rid] = Prior(kind, strength * mean, strength * (1 - mean))
    return out


def posterior(prior: Prior, spam: int, ham: int) -> tuple[float, float]:
    """(mean, 95% lower bound) of the precision's posterior Beta(prior + spam, prior + ham)."""
    from scipy.stats import beta

    a, b = prior.alpha + spam, prior.beta + ham
    mean = a / (a + b)
    # With a kind whose record is all but perfect, beta is tiny and the quantile rounds to 1.0 in
    # floating point; a lower bound is never above the mean.
    return mean, min(float(beta.ppf(LOWER_QUANTILE, a, b)), mean)


def evidence_metrics(
    kinds: Mapping[str, str],
    evidence: Mapping[str, Evidence],
    ham_by_fold: Mapping[int, int],
    folds: int,
) -> dict[str, dict[str, Any]]:
    """The evidence fields promotion and the tiers read, per rule (rounded: stable JSON).

    ``ham_by_fold``: labelled ham messages per mining fold, and of the evaluation window under -1;
    a rule's false positive rate is over the ham of the folds its evidence uses."""
    priors = kind_priors(kinds, evidence)
    out: dict[str, dict[str, Any]] = {}
    for rid in sorted(kinds):
        ev = evidence.get(rid, Evidence(0, 0))
        prior = priors.get(rid, Prior(kinds[rid], 1.0, 1.0))
        labelled = ev.spam_count + ev.ham_count
        ham_total = ham_by_fold.get(-1, 0) + sum(ham_by_fold.get(f, 0) for f in ev.folds_used)
        mean, lower = posterior(prior, ev.spam_count, ev.ham_count)
        out[rid] = {
            "rule_kind": kinds[rid],
            "evidence_folds": folds,
            "evidence_folds_used": len(ev.folds_used),
            "evidence_spam_hits": ev.spam_count,
            "evidence_ham_hits": ev.ham_count,
            "evidence_ham_total": ham_total,
            "evidence_precision": round(ev.spam_count / labelled, 6) if labelled else None,
            "evidence_false_positive_rate": round(ev.ham_count / ham_total, 6) if ham_total else None,
            "prior_mean": round(prior.mean, 6),
            "prior_strength": round(prior.strength, 3),
            "posterior_mean": round(mean, 6),
            "posterior_lower_bound": round(lower, 6),
        }
    return out
