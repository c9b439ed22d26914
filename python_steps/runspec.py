"""The one run specification: everything a pipeline run is configured with.

Built once — from ``patas run`` flags, from Dagster run config (the ``run_spec`` resource) or from
the HTTP API — and passed down unchanged: the Dagster assets read it from one resource, the dbt
step renders it once into ``--vars`` (:meth:`RunSpec.dbt_vars`). Every setting has exactly one
default, here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from python_steps.mining.clustering import parse_slice
from python_steps.mining.privacy import DEFAULT_PRIVACY, PRIVACY_MODES
from python_steps.mining.reuse import stage1_code_version
from python_steps.mining.windows import SPLIT_MODES, RunWindows, resolve_windows

DEFAULT_PROFILE = "conservative"


class RunSpecError(ValueError):
    """A run specification that cannot run (the message names the setting)."""


@dataclass(frozen=True)
class RunSpec:
    # Windows (python_steps.mining.windows): explicit bounds, or a split derived from the data.
    split: str = "auto"
    mining_start: str | None = None
    mining_end: str | None = None
    evaluation_start: str | None = None
    evaluation_end: str | None = None
    evaluation_share: int = 30  # hash split: percent of template buckets held out
    # Stage 1 (dbt vars)
    suspiciousness_threshold: float = 0.03
    min_spam_count: int = 3
    # Stage 2 (python_steps.mining.clustering): off = stage 1 only (simple mode)
    two_stage: bool = True
    # the suspicious slice: a preset (narrow 1%, default 3%, wide 5%, explore 15%) or a percent
    stage2_slice: str = "default"
    stage2_sample_size: int = 4000
    stage2_eps: float = 0.30
    stage2_min_samples: int = 6
    # Drafting
    max_rules: int = 1000
    use_llm: bool = True  # only when the LLM is enabled in the settings (PATAS_LLM_ENABLED): off by default
    # What the LLM may see (python_steps.mining.privacy): standard = redacted examples, strict =
    # aggregates only (no example text, no ham, no entity other than the pattern's own)
    llm_privacy: str = DEFAULT_PRIVACY
    # Promotion: the safety profile; None = the settings' profile (PATAS_PROFILE, else conservative)
    profile: str | None = None
    # Cross-fitted evidence (python_steps.lifecycle.evidence): the mining window's labelled messages
    # are split into this many folds and every rule is also measured out of fold there; 1 = the
    # evaluation window's hits only (with the kind priors); 0 = the evaluation window's own metrics,
    # as before cross-fitting (shadow evaluation skips the mining window for both)
    crossfit_folds: int = 5
    # Files to ingest at the start of the run (the inbox sensor, `patas run --ingest`)
    ingest_paths: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.split not in SPLIT_MODES:
            raise RunSpecError(f"split must be one of {', '.join(SPLIT_MODES)}, not {self.split!r}")
        if not 1 <= self.evaluation_share <= 99:
            raise RunSpecError("evaluation_share must be between 1 and 99 (percent of split buckets)")
        if not 0 < self.suspiciousness_threshold <= 1:
            raise RunSpecError("suspiciousness_threshold must be in (0, 1]")
        if not 0 <= self.crossfit_folds <= 20:
            raise RunSpecError("crossfit_folds must be between 0 and 20 (0 or 1: no cross-fitting)")
        for name in ("min_spam_count", "stage2_sample_size", "stage2_min_samples", "max_rules"):
            if getattr(self, name) < 1:
                raise RunSpecError(f"{name} must be at least 1")
        try:
            parse_slice(self.stage2_slice)
        except ValueError as exc:
            raise RunSpecError(str(exc)) from None
        object.__setattr__(self, "stage2_slice", str(self.stage2_slice).strip().lower())
        if not 0 < self.stage2_eps < 2:
            raise RunSpecError("stage2_eps must be a cosine distance in (0, 2)")
        object.__setattr__(self, "ingest_paths", tuple(self.ingest_paths))
        if self.llm_privacy not in PRIVACY_MODES:
            raise RunSpecError(
                f"llm_privacy must be one of {', '.join(PRIVACY_MODES)}, not {self.llm_privacy!r}"
            )

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> RunSpec:
        """From a plain mapping (Dagster run config, an API body); unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise RunSpecError(f"unknown run setting(s): {', '.join(unknown)}")
        try:
            return cls(**{k: v for k, v in values.items() if v is not None or k.endswith(("_start", "_end"))})
        except TypeError as exc:  # a wrong type for a field
            raise RunSpecError(str(exc)) from None

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ingest_paths"] = list(self.ingest_paths)
        return d

    @property
    def stage2_slice_percent(self) -> float:
        return parse_slice(self.stage2_slice)

    def profile_or(self, default: str) -> str:
        return self.profile or default or DEFAULT_PROFILE

    def resolve_windows(self, conn) -> RunWindows:
        """The run's windows: the explicit bounds, else derived from the data (never the clock)."""
        try:
            return resolve_windows(
                conn,
                split=self.split,
                mining_start=self.mining_start,
                mining_end=self.mining_end,
                evaluation_start=self.evaluation_start,
                evaluation_end=self.evaluation_end,
                evaluation_share=self.evaluation_share,
            )
        except ValueError as exc:
            raise RunSpecError(str(exc)) from None

    def dbt_vars(self, windows: RunWindows, run_id: str) -> dict[str, object]:
        """The dbt ``--vars`` of the run: rendered here and nowhere else."""
        return {
            **windows.dbt_vars(run_id),
            "patas_suspiciousness_threshold": self.suspiciousness_threshold,
            "patas_min_spam_count": self.min_spam_count,
            "patas_shadow_windows": shadow_windows(self.crossfit_folds),
            "patas_stage1_code": stage1_code_version(),
        }


def shadow_windows(crossfit_folds: int) -> list[str]:
    """The windows shadow evaluation measures: the mining window too when evidence is cross-fitted."""
    return ["mining", "evaluation"] if crossfit_folds >= 2 else ["evaluation"]
