"""The original worker API (run_video_edit, get_video_edit_status) behaves as the original
worker's examples 1 and 2 show."""

from __future__ import annotations

import threading
import time

import pytest

from clients.sample_clip import make_sample_clip
from orchestrator import VideoEditRequest, get_video_edit_status, run_video_edit
from orchestrator.errors import InvalidArgument, JobFailed
from tests.helpers import EVENT_TIMEOUT_S, FAST_JOB


@pytest.fixture
def legacy_env(monkeypatch, stack, media_dir, tmp_path):
    monkeypatch.setenv("VIDEOEDIT_MODEL_SERVERS", stack.modelserver_address)
    monkeypatch.setenv("VIDEOEDIT_INPUT_ROOTS", str(media_dir))
    monkeypatch.setenv("UR_EDIT_OUTPUT_DIR", str(tmp_path / "outputs"))
    return tmp_path / "outputs"


def test_example_1_synchronous_run_then_status(legacy_env, clip):
    job_id = "test_001"
    request = VideoEditRequest(
        job_id=job_id,
        input_video_path=clip,
        output_dir=legacy_env / job_id,
        mask_prompt="hair",
        edit_prompt="make the hair red",
        max_frames=6,
        **FAST_JOB,
    )
    run_video_edit(request)
    status = get_video_edit_status(job_id, request.output_dir)
    assert status.status == "finished" and status.progress == 1.0
    assert status.output_video_path == legacy_env / job_id / f"{job_id}_output.mp4"
    assert status.output_video_path.is_file() and status.mask_preview_path.is_file() and status.logs_path.is_file()
    assert status.to_dict()["status"] == "finished"
    # Without output_dir the default is <UR_EDIT_OUTPUT_DIR>/<job_id>.
    assert get_video_edit_status(job_id).job_id == job_id


def test_example_2_polling_from_another_thread(legacy_env, clip):
    """The original worker's example 2 as written: poll at once after thread.start(), no wait for
    status.json (its 2 s sleep shortened to keep the test quick)."""
    job_id = "test_002"
    request = VideoEditRequest(
        job_id=job_id,
        input_video_path=clip,
        output_dir=legacy_env / job_id,
        mask_prompt="person",
        edit_prompt="make the person wear a red shirt",
        **FAST_JOB,
    )
    errors = []
    thread = threading.Thread(target=_run, args=(request, errors))
    thread.start()
    seen = []
    while thread.is_alive():
        status = get_video_edit_status(job_id, request.output_dir)  # never NotFound, even at once
        seen.append((status.status, status.progress))
        if status.status in ["finished", "failed"]:
            break
        time.sleep(0.05)
    thread.join()
    assert not errors
    final = get_video_edit_status(job_id, request.output_dir)
    assert final.status == "finished"
    assert len({s for s, _ in seen}) >= 2, "polling should see the job move through stages"
    assert [p for _, p in seen] == sorted(p for _, p in seen)


def test_a_started_job_reads_queued_before_its_status_file_exists(legacy_env, clip, monkeypatch):
    import orchestrator.legacy_api as legacy_api

    validating, release = threading.Event(), threading.Event()
    real_check = legacy_api.check_request

    def slow_check(request, settings):  # holds the job before it writes status.json
        validating.set()
        assert release.wait(EVENT_TIMEOUT_S)
        return real_check(request, settings)

    monkeypatch.setattr(legacy_api, "check_request", slow_check)
    request = VideoEditRequest(
        job_id="held",
        input_video_path=clip,
        output_dir=legacy_env / "held",
        mask_prompt="car",
        edit_prompt="red",
        **FAST_JOB,
    )
    errors = []
    thread = threading.Thread(target=_run, args=(request, errors))
    thread.start()
    assert validating.wait(EVENT_TIMEOUT_S)
    assert not (legacy_env / "held" / "status.json").exists()
    assert get_video_edit_status("held", request.output_dir).status == "queued"
    release.set()
    thread.join()
    assert not errors and get_video_edit_status("held", request.output_dir).status == "finished"


def test_a_never_started_job_is_not_found_and_a_refused_one_reads_failed(legacy_env, clip):
    from orchestrator.errors import NotFound

    with pytest.raises(NotFound, match="no job 'never-started'"):
        get_video_edit_status("never-started")
    refused = VideoEditRequest(
        job_id="refused",
        input_video_path=clip,
        output_dir=legacy_env / "refused",
        mask_prompt="car",
        edit_prompt="red",
        num_inference_steps=0,
    )
    with pytest.raises(InvalidArgument, match="num_inference_steps"):
        run_video_edit(refused)
    status = get_video_edit_status("refused", refused.output_dir)
    assert status.status == "failed" and "num_inference_steps" in status.error


def test_failure_raises_and_is_recorded(legacy_env, media_dir):
    tiny = make_sample_clip(media_dir / "tiny.mp4", frames=3, width=8, height=8, audio=False)  # a video, too small
    request = VideoEditRequest(
        job_id="test_003",
        input_video_path=tiny,
        output_dir=legacy_env / "test_003",
        mask_prompt="car",
        edit_prompt="make it red",
    )
    with pytest.raises(JobFailed, match="8x8 frames"):
        run_video_edit(request)
    status = get_video_edit_status("test_003", request.output_dir)
    assert status.status == "failed" and "8x8 frames" in status.error


@pytest.mark.parametrize(
    "fields, words",
    [
        (dict(input_video_path="notes.mp4"), "input_video_path: "),  # ...'<path>' is not a video: ...
        (dict(input_video_path="cl\0ip.mp4"), "input_video_path: contains a NUL character"),
        (dict(output_dir="a\0b"), "output_dir: contains a NUL character"),
        (dict(edit_prompt="red\0"), "edit_prompt: contains a NUL character"),
        (dict(extra={"seed_mode": "fixed\0"}), "extra[seed_mode]: contains a NUL character"),
    ],
)
def test_bad_input_is_refused_naming_the_field(legacy_env, media_dir, clip, fields, words):
    (media_dir / "notes.mp4").write_text("this is not a video")
    request = VideoEditRequest(
        job_id="refused-input",
        input_video_path=media_dir / fields.pop("input_video_path", clip.name),
        output_dir=legacy_env / fields.pop("output_dir", "refused-input"),
        mask_prompt="car",
        edit_prompt=fields.pop("edit_prompt", "red"),
        **fields,
    )
    with pytest.raises(InvalidArgument) as err:
        run_video_edit(request)
    assert str(err.value).startswith(words), err.value
    assert "NUL" in str(err.value) or "is not a video: not a media file" in str(err.value)
    assert get_video_edit_status("refused-input", legacy_env / "refused-input").status == "failed"
    with pytest.raises(InvalidArgument, match="output_dir: contains a NUL"):
        get_video_edit_status("refused-input", legacy_env / "a\0b")


def _run(request, errors):
    try:
        run_video_edit(request)
    except Exception as err:  # the original worker's example prints it; the test collects it
        errors.append(err)


def test_callbacks_are_refused_in_process_not_ignored(legacy_env, clip):
    request = VideoEditRequest(
        job_id="refused-callback",
        input_video_path=clip,
        output_dir=legacy_env / "refused-callback",
        mask_prompt="car",
        edit_prompt="red",
        extra={"callback_url": "https://hooks.example.com/in"},
    )
    with pytest.raises(InvalidArgument, match=r"extra\[callback_url\]: webhooks are sent by the orchestrator service"):
        run_video_edit(request)
