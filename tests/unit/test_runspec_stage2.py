"""Stage-2 settings of the run specification: one default each, validated once, and carried into
Dagster run config by the run_spec resource without being listed twice."""

from __future__ import annotations

import pytest

from python_steps.runspec import RunSpec, RunSpecError


def test_defaults_are_two_stage_and_the_default_slice():
    spec = RunSpec()
    assert spec.two_stage is True and spec.stage2_slice == "default" and spec.stage2_slice_percent == 3.0


@pytest.mark.parametrize(
    ("value", "percent"), [("narrow", 1.0), ("Wide", 5.0), ("explore", 15.0), ("0.5", 0.5)]
)
def test_slice_from_a_mapping(value, percent):
    spec = RunSpec.from_mapping({"stage2_slice": value, "two_stage": False})
    assert spec.stage2_slice_percent == percent and spec.two_stage is False


@pytest.mark.parametrize("value", ["all", "0", "250"])
def test_a_bad_slice_names_the_setting(value):
    with pytest.raises(RunSpecError, match="stage-2 slice"):
        RunSpec(stage2_slice=value)


def test_the_dagster_resource_carries_the_stage2_fields():
    from patas_dagster.resources import RunSpecResource

    resource = RunSpecResource(stage2_slice="narrow", two_stage=False)
    spec = resource.spec()
    assert spec.stage2_slice_percent == 1.0 and spec.two_stage is False
    assert RunSpecResource().spec() == RunSpec()
