"""The shared contract: the stage list matches the job statuses and covers progress 0..1 without
gaps; the model server's default limits are the contract's; EditParams.check names what it refuses."""

from __future__ import annotations

import pytest

from modelserver.validation import Limits
from orchestrator.request import JobStatus
from videoedit.v1 import contract


def test_the_stage_list_is_the_job_statuses_between_queued_and_the_end():
    running = [s.value for s in JobStatus if s is not JobStatus.QUEUED and not s.terminal]
    assert list(contract.STAGE_NAMES) == running


def test_stage_bands_cover_progress_from_0_to_1_in_order():
    assert contract.STAGES[0].progress_start == 0.0 and contract.STAGES[-1].progress_end == 1.0
    for before, after in zip(contract.STAGES, contract.STAGES[1:]):
        assert before.progress_start < before.progress_end == after.progress_start


def test_the_model_servers_command_line_defaults_to_the_contracts_limits():
    from modelserver.cli import limits_from_args, parse_args

    assert limits_from_args(parse_args([])) == Limits(contract.MAX_SEGMENT_FRAMES, contract.MAX_EDIT_BATCH)
    assert contract.CHUNK_SIZE.high <= contract.MAX_SEGMENT_FRAMES  # a job's largest chunk fits one call


@pytest.mark.parametrize(
    "params, words",
    [
        (contract.EditParams(float("nan"), 7.5, 2), r"image_guidance_scale: nan is out of range \[0.0, 30.0\]"),
        (contract.EditParams(1.5, 51, 2), "guidance_scale: 51 is out of range"),
        (contract.EditParams(1.5, 7.5, 501), "num_inference_steps: 501 is out of range"),
        (contract.EditParams(0.5, 7.5, 2), "image_guidance_scale: image_guidance_scale 0.5 is below 1"),
        (contract.EditParams(1.5, 7.5, 2, "ddim"), "scheduler: 'ddim' is not one of euler_ancestral, dpmpp_2m, unipc"),
    ],
)
def test_edit_params_outside_the_limits_are_refused_naming_the_field_and_value(params, words):
    with pytest.raises(contract.InvalidParam, match=words) as err:
        params.check()
    assert str(err.value).startswith(f"{err.value.field}: ")


def test_edit_params_within_the_limits_pass():
    for scheduler in ("", *contract.SCHEDULERS):
        contract.EditParams(1.5, 7.5, 20, scheduler).check()


@pytest.mark.parametrize(
    "env, container, host",
    [
        ({}, False, "127.0.0.1"),  # a developer's machine: nobody else reads the metrics
        ({}, True, "0.0.0.0"),  # Docker: the scraper is another container
        ({"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, False, "0.0.0.0"),
        ({"VIDEOEDIT_METRICS_HOST": "::1", "KUBERNETES_SERVICE_HOST": "10.0.0.1"}, True, "::1"),
    ],
)
def test_metrics_listen_on_loopback_outside_containers_unless_told(monkeypatch, env, container, host):
    monkeypatch.setattr(contract.os.path, "exists", lambda path: container)
    assert contract.metrics_host(env) == host
