"""The LLM privacy mode on the run specification: one default, validated, carried into Dagster run
config by the run_spec resource and set by `patas run --llm-privacy`."""

from __future__ import annotations

import pytest

from python_steps.runspec import RunSpec, RunSpecError


def test_default_is_standard_and_strict_is_accepted():
    assert RunSpec().llm_privacy == "standard"
    assert RunSpec.from_mapping({"llm_privacy": "strict"}).llm_privacy == "strict"


def test_a_bad_mode_names_the_setting():
    with pytest.raises(RunSpecError, match="llm_privacy"):
        RunSpec(llm_privacy="none")


def test_the_dagster_resource_carries_the_privacy_mode():
    from patas_dagster.resources import RunSpecResource

    assert RunSpecResource(llm_privacy="strict").spec().llm_privacy == "strict"
    assert RunSpecResource().spec().llm_privacy == "standard"


def test_the_run_flag_sets_it():
    from patas.cli.main import _spec_from_flags

    assert _spec_from_flags(llm_privacy="strict").llm_privacy == "strict"
    assert _spec_from_flags(llm_privacy=None).llm_privacy == "standard"


def test_the_api_run_options_carry_it():
    from pydantic import ValidationError

    from patas.service.schemas import RunOptions

    params = RunOptions(llm_privacy="strict").model_dump(exclude_none=True)
    assert RunSpec(**params).llm_privacy == "strict"
    with pytest.raises(ValidationError):
        RunOptions(llm_privacy="open")
