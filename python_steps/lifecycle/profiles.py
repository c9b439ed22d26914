"""Safety profiles and quality tiers, from one configuration file (``safety_profiles.toml``).

A profile says when a shadow rule may become active and when an active rule is deprecated
(``python_steps.lifecycle``). The defaults live beside this module; a user file with the same
layout (``$PATAS_HOME/safety_profiles.toml``, or any path the caller gives) overrides or adds
profiles. Nothing here reads the environment: callers pass the path.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

DEFAULT_CONFIG = Path(__file__).with_name("safety_profiles.toml")

# Whatever a profile says, a rule that hits more than this share of the evaluation window is never
# promoted (DESIGN.md: the "match everything" guard of the SQL safety rules).
MATCH_EVERYTHING_COVERAGE = 0.80

TIERS = ("SAFE_AUTO", "REVIEW_ONLY", "FEATURE_ONLY")


class ProfileError(ValueError):
    pass


@dataclass(frozen=True)
class SafetyProfile:
    name: str
    min_precision: float
    max_ham_hits: int
    max_coverage: float
    min_hits: int = 0
    use_wilson: bool = False
    max_relative_precision_drop: float = 0.10
    max_idle_runs: int = 0
    fp_budget: int | None = None
    # Where use_wilson applies: "rule" (each rule's own lower bound must clear min_precision) or
    # "ruleset" (each rule's point precision must; the lower bound of the whole promoted set must).
    wilson_scope: str = "rule"
    # Set choice (with fp_budget): a rule joins the set only when it catches at least this many
    # held-out spam messages the rules chosen before it do not
    min_new_spam: int = 1
    # Feedback: deprecate an active rule when more than this share of its evaluation-window hits
    # were reversed (label feedback or a moderator unban turned them to ham), once at least
    # min_reversed_hits of them were.
    max_reversed_share: float = 0.10
    min_reversed_hits: int = 2

    @property
    def selects_as_set(self) -> bool:
        """Promotion needs the rules' hit sets (a greedy, set-level choice)."""
        return self.fp_budget is not None or (self.use_wilson and self.wilson_scope == "ruleset")

    def __post_init__(self) -> None:
        if self.wilson_scope not in ("rule", "ruleset"):
            raise ProfileError(f"profile {self.name}: wilson_scope must be 'rule' or 'ruleset'")
        if not 0 < self.min_precision <= 1:
            raise ProfileError(f"profile {self.name}: min_precision must be in (0, 1]")
        if not 0 < self.max_coverage <= MATCH_EVERYTHING_COVERAGE:
            raise ProfileError(
                f"profile {self.name}: max_coverage must be in (0, {MATCH_EVERYTHING_COVERAGE}]"
            )
        if self.min_new_spam < 1:
            raise ProfileError(f"profile {self.name}: min_new_spam must be at least 1")
        if self.max_ham_hits < 0 or self.min_hits < 0 or self.max_idle_runs < 0:
            raise ProfileError(f"profile {self.name}: counts must not be negative")
        if not 0 <= self.max_relative_precision_drop < 1:
            raise ProfileError(f"profile {self.name}: max_relative_precision_drop must be in [0, 1)")
        if not 0 <= self.max_reversed_share < 1:
            raise ProfileError(f"profile {self.name}: max_reversed_share must be in [0, 1)")
        if self.min_reversed_hits < 1:
            raise ProfileError(f"profile {self.name}: min_reversed_hits must be at least 1")
        if self.fp_budget is not None and self.fp_budget < 0:
            raise ProfileError(f"profile {self.name}: fp_budget must not be negative")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TierThresholds:
    safe_auto_min_precision: float = 0.98
    safe_auto_max_false_positive_rate: float = 0.005
    review_only_min_precision: float = 0.90


@dataclass(frozen=True)
class ProfileConfig:
    profiles: Mapping[str, SafetyProfile]
    default_profile: str
    tiers: TierThresholds

    def get(self, name: str | None = None) -> SafetyProfile:
        key = name or self.default_profile
        if key not in self.profiles:
            raise ProfileError(f"unknown safety profile {key!r}; known: {', '.join(sorted(self.profiles))}")
        return self.profiles[key]


_PROFILE_KEYS = {f.name for f in fields(SafetyProfile)} - {"name"}
_TIER_KEYS = {f.name for f in fields(TierThresholds)}


def _read(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as e:
        raise ProfileError(f"{path}: not valid TOML ({e})") from None


def _profile(name: str, values: Mapping[str, Any], base: SafetyProfile | None, where: Path) -> SafetyProfile:
    unknown = set(values) - _PROFILE_KEYS
    if unknown:
        raise ProfileError(f"{where}: profile {name} has unknown keys {sorted(unknown)}")
    merged = ({k: v for k, v in asdict(base).items() if k != "name"} if base else {}) | dict(values)
    missing = {"min_precision", "max_ham_hits", "max_coverage"} - set(merged)
    if missing:
        raise ProfileError(f"{where}: profile {name} misses {sorted(missing)}")
    return SafetyProfile(name=name, **merged)


def load_profiles(user_config: Path | None = None) -> ProfileConfig:
    """The default profiles, overridden or extended by ``user_config`` when it exists."""
    sources = [DEFAULT_CONFIG] + ([user_config] if user_config and Path(user_config).exists() else [])
    profiles: dict[str, SafetyProfile] = {}
    default = "conservative"
    tiers: dict[str, float] = {}
    for path in sources:
        doc = _read(Path(path))
        unknown = set(doc) - {"default_profile", "profiles", "tiers"}
        if unknown:
            raise ProfileError(f"{path}: unknown sections {sorted(unknown)}")
        for name, values in sorted(doc.get("profiles", {}).items()):
            profiles[name] = _profile(name, values, profiles.get(name), Path(path))
        bad = set(doc.get("tiers", {})) - _TIER_KEYS
        if bad:
            raise ProfileError(f"{path}: unknown tier keys {sorted(bad)}")
        tiers.update(doc.get("tiers", {}))
        default = doc.get("default_profile", default)
    config = ProfileConfig(profiles=profiles, default_profile=default, tiers=TierThresholds(**tiers))
    config.get()  # the default must exist
    return config


def tier_for(metrics: Mapping[str, Any] | None, thresholds: TierThresholds | None = None) -> str:
    """A rule's quality tier. Only ``SAFE_AUTO`` rules are promoted automatically; ``REVIEW_ONLY``
    rules wait for a person (``patas rules review``); ``FEATURE_ONLY`` rules are exported as
    features, never as blocking rules.

    With cross-fitted evidence (``posterior_mean`` in ``metrics``, python_steps.lifecycle.evidence):
    SAFE_AUTO when the posterior mean precision is at least ``safe_auto_min_precision``, the rule
    hit at most ``safe_auto_max_false_positive_rate`` of the labelled ham its evidence covers, and
    it is not a single common word; REVIEW_ONLY when the posterior mean is at least
    ``review_only_min_precision``; else FEATURE_ONLY. Without it (an evaluation row only): the
    point precision and the 95% upper bound of the false positive rate on the evaluation window.
    FEATURE_ONLY without labelled evidence."""
    t = thresholds or TierThresholds()
    m = metrics or {}
    if m.get("posterior_mean") is not None:
        if not m.get("evidence_spam_hits"):
            return "FEATURE_ONLY"
        fpr = m.get("evidence_false_positive_rate")
        if (
            m["posterior_mean"] >= t.safe_auto_min_precision
            and fpr is not None
            and fpr <= t.safe_auto_max_false_positive_rate
            and m.get("rule_kind") != "word_common"
        ):
            return "SAFE_AUTO"
        if m["posterior_mean"] >= t.review_only_min_precision:
            return "REVIEW_ONLY"
        return "FEATURE_ONLY"
    precision = m.get("precision")
    if precision is None:
        return "FEATURE_ONLY"
    fpr_upper = m.get("false_positive_rate_upper_bound")
    if (
        precision >= t.safe_auto_min_precision
        and fpr_upper is not None
        and fpr_upper <= t.safe_auto_max_false_positive_rate
    ):
        return "SAFE_AUTO"
    if precision >= t.review_only_min_precision:
        return "REVIEW_ONLY"
    return "FEATURE_ONLY"
