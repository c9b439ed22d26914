"""Cross-fitted evidence, priors by rule kind and the general-language prior (pure functions)."""

from __future__ import annotations

import pytest

from python_steps.lifecycle import evidence as ev
from python_steps.text.common_words import LanguageError, check_languages, is_common_word, phrase_is_common


def bar(kind: str, spam: int, ham: int) -> bool:
    return ev.drafting_bar(kind, spam, ham, min_spam=3, min_share=0.95, max_phrase_ham=1)


def test_common_words_come_from_the_word_list() -> None:
    assert is_common_word("win") and is_common_word("online") and is_common_word("the")
    assert not is_common_word("ringtone") and not is_common_word("150p") and not is_common_word("")
    assert phrase_is_common("attempt to contact") and not phrase_is_common("txt stop")
    # Thai script is judged by the Thai National Corpus list whatever the configured languages:
    # "immediately" and "receive" are everyday Thai, "slot" (the casino game) is not; a word keeps
    # matching in its normalized form (NFKC splits the vowel of ต่ำ into ต่ํา).
    assert is_common_word("ทันที") and is_common_word("รับ") and is_common_word("ขั้นต่ํา")
    assert not is_common_word("สล็อต") and not is_common_word("บาคาร่า")
    assert phrase_is_common("รับ ทันที") and not phrase_is_common("รับ สล็อต")
    assert is_common_word("gratis", ("es",)) and not is_common_word("gratis", ("en",))
    assert check_languages(["en", "es"]) == ("en", "es")
    assert check_languages(["th"]) == ("th",)  # a list outside wordfreq
    with pytest.raises(LanguageError, match="xx"):
        check_languages(["en", "xx"])


@pytest.mark.parametrize(
    ("rule_json", "origin", "kind"),
    [
        ({"kind": "domain", "op": "eq", "value": "bit.ly"}, "pattern_mining", "domain"),
        ({"kind": "phone", "op": "prefix", "value": "0871"}, "pattern_mining", "phone_range"),
        ({"kind": "phone", "op": "present"}, "pattern_mining", "presence"),
        ({"kind": "signature", "op": "eq", "value": "ab" * 16}, "pattern_mining", "template"),
        ({"kind": "text_phrase", "value": "ringtone"}, "pattern_mining", "phrase_rare"),
        ({"kind": "text_phrase", "value": "win"}, "pattern_mining", "word_common"),
        ({"kind": "text_phrase", "value": "attempt to contact"}, "pattern_mining", "phrase_common"),
        # Thai words by the Thai list, with the default languages (en): "immediately" is common.
        ({"kind": "text_phrase", "value": "ทันที"}, "pattern_mining", "word_common"),
        ({"kind": "text_phrase", "value": "สล็อต"}, "pattern_mining", "phrase_rare"),
        (
            {"all": [{"kind": "text_phrase", "value": "call"}, {"kind": "text_phrase", "value": "claim"}]},
            "pattern_mining",
            "conjunction_common",
        ),
        (
            {"all": [{"kind": "text_phrase", "value": "free"}, {"kind": "text_phrase", "value": "nokia"}]},
            "pattern_mining",
            "conjunction",
        ),
        ({"kind": "text_contains", "value": "คาสิโน"}, "pattern_mining", "substring"),
        ({"kind": "text_phrase", "value": "ringtone"}, "semantic", "cluster"),
        ({"kind": "text_phrase", "value": "ringtone"}, "llm", "llm"),
        ({"raw_sql": "true"}, "manual", "manual"),
    ],
)
def test_rule_kinds(rule_json: dict, origin: str, kind: str) -> None:
    assert ev.rule_kind(rule_json, origin) == kind


def test_a_substring_precise_only_thanks_to_an_edge_character_borrows_nothing() -> None:
    """Drafting marks it ``substring_edge:``: its kind is ``substring_common``, with a uniform prior
    whatever the other rules of the kind achieved, and the phrases' bar."""
    rule = {"kind": "text_contains", "value": "ฝากเข้า"}
    assert ev.rule_kind(rule, "pattern_mining", pattern_id="substring_edge:ฝากเข้า") == "substring_common"
    assert ev.rule_kind(rule, "pattern_mining", pattern_id="substring:ฝากเข้า") == "substring"
    assert "substring_common" in ev.COMMON_KINDS and "substring_common" in ev.RULE_KINDS
    kinds = {"a": "substring_common", "b": "substring_common", "c": "substring_common"}
    evidence = {r: ev.Evidence(40, 0) for r in kinds}
    priors = ev.kind_priors(kinds, evidence)
    assert {(p.alpha, p.beta) for p in priors.values()} == {(1.0, 1.0)}
    assert bar("substring_common", 30, 1) and not bar("substring_common", 40, 2)


def test_substrings_meet_the_phrase_bar() -> None:
    """Drafting keeps a substring of unspaced text on the phrases' bar: at most one ham."""
    assert bar("substring", 30, 1) and not bar("substring", 40, 2) and bar("domain", 40, 2)


def test_out_of_fold_hits_count_only_where_the_rule_is_drafted_without_the_fold() -> None:
    counts = {
        # spread over folds 0..4: drafted without any one fold, every mining hit is evidence
        "r_spread": {-1: (1, 0)} | {f: (4, 0) for f in range(5)},
        # one template, one fold: without fold 2 it has no spam, so its mining hits are in-sample;
        # folds 0, 1, 3, 4 are out of fold (drafted without them: it just hits nothing there)
        "r_one_fold": {-1: (1, 0), 2: (8, 0)},
        # its single ham sits in fold 1; drafted without any fold (24+ spam, <= 1 ham), all count
        "r_ham": {0: (6, 0), 1: (6, 1), 2: (6, 0), 3: (6, 0), 4: (6, 0)},
        # 10 spam and 1 ham: without a fold, 8 spam to 1 ham is under 95%; only without fold 1 (clean)
        "r_thin": {0: (2, 0), 1: (2, 1), 2: (2, 0), 3: (2, 0), 4: (2, 0)},
        # a cluster rule saw the whole mining window: evaluation hits only
        "r_cluster": {-1: (0, 1)} | {f: (2, 0) for f in range(5)},
    }
    kinds = {
        "r_spread": "domain",
        "r_one_fold": "template",
        "r_ham": "phrase_rare",
        "r_thin": "phrase_rare",
        "r_cluster": "cluster",
    }
    origins = {rid: "pattern_mining" for rid in kinds} | {"r_cluster": "semantic"}
    out = ev.crossfit_evidence(counts, kinds, origins, 5, bar)
    assert (out["r_spread"].spam_count, out["r_spread"].ham_count, len(out["r_spread"].folds_used)) == (
        21,
        0,
        5,
    )
    assert (out["r_one_fold"].spam_count, out["r_one_fold"].folds_used) == (1, frozenset({0, 1, 3, 4}))
    assert (out["r_ham"].spam_count, out["r_ham"].ham_count) == (30, 1)
    assert (out["r_thin"].spam_count, out["r_thin"].ham_count, out["r_thin"].folds_used) == (
        2,
        1,
        frozenset({1}),
    )
    assert (out["r_cluster"].spam_count, out["r_cluster"].ham_count) == (0, 1)
    # Without cross-fitting the evaluation window alone is the evidence.
    plain = ev.crossfit_evidence(counts, kinds, origins, 0, bar)
    assert (
        plain["r_spread"].spam_count == 1
        and plain["r_one_fold"].spam_count == 1
        and plain["r_ham"].spam_count == 0
    )


def test_kind_priors_pool_the_other_rules_of_the_kind() -> None:
    clean = {f"d{i}": ev.Evidence(30, 0) for i in range(6)}
    noisy = {f"p{i}": ev.Evidence(20, 5) for i in range(6)}
    common = {"c0": ev.Evidence(200, 0)}
    evidence = clean | noisy | common
    kinds = {rid: "domain" for rid in clean} | {rid: "phrase_rare" for rid in noisy} | {"c0": "word_common"}
    priors = ev.kind_priors(kinds, evidence)
    assert priors["d0"].mean > 0.98 and priors["d0"].strength == ev.MAX_PRIOR_STRENGTH
    assert 0.75 < priors["p0"].mean < 0.85
    assert (priors["c0"].alpha, priors["c0"].beta) == (1.0, 1.0)  # common words borrow nothing
    # Four clean hits: strong evidence for a domain rule among clean domains, weak for a common phrase.
    d_mean, d_low = ev.posterior(priors["d0"], 4, 0)
    c_mean, c_low = ev.posterior(ev.Prior("phrase_common", 1.0, 1.0), 4, 0)
    assert d_low > 0.85 and c_low < 0.55 and d_mean > c_mean


def test_evidence_metrics_are_deterministic_and_name_their_inputs() -> None:
    evidence = {"a": ev.Evidence(40, 1, frozenset({0, 1, 2})), "b": ev.Evidence(10, 0)}
    kinds = {"a": "domain", "b": "domain"}
    ham_by_fold = {-1: 1000, 0: 500, 1: 500, 2: 500, 3: 500, 4: 500}
    one = ev.evidence_metrics(kinds, evidence, ham_by_fold, 5)
    assert one == ev.evidence_metrics(kinds, evidence, ham_by_fold, 5)
    a = one["a"]
    assert (a["evidence_spam_hits"], a["evidence_ham_hits"], a["evidence_ham_total"]) == (40, 1, 2500)
    assert a["evidence_false_positive_rate"] == round(1 / 2500, 6)
    assert 0 < a["posterior_lower_bound"] < a["posterior_mean"] < 1
    assert one["b"]["evidence_ham_total"] == 1000 and one["b"]["evidence_folds_used"] == 0


def test_the_lower_bound_never_exceeds_the_mean_for_an_almost_perfect_kind() -> None:
    prior = ev.Prior("domain", 19.99998, 0.00002)  # a kind with thousands of clean held-out hits
    mean, lower = ev.posterior(prior, 40, 0)
    assert 0.99 < lower <= mean < 1.0
