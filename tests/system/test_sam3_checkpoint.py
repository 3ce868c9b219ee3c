"""A job through the services on SAM3 weights converted from Meta's sam3.pt layout.

The operator's route: `videoedit-modelserver convert-sam3 sam3.pt DIR` (run here in-process, so
the converter can be given the tiny model's config), then a model server started on DIR like on
any downloaded model, an orchestrator in front, and an edit job watched to its end.
"""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

pytest.importorskip("transformers")

from clients.client import VideoEditClient  # noqa: E402
from clients.sample_clip import make_sample_clip  # noqa: E402
from modelserver.cli import main as modelserver_cli  # noqa: E402
from tests.helpers import FAST_JOB  # noqa: E402
from tests.sam3_checkpoints import convert_to_the_tiny_config, write_tiny_meta_checkpoint  # noqa: E402
from videoedit.v1 import model_service_pb2 as model_pb
from videoedit.v1 import model_service_pb2_grpc as model_grpc
from videoedit.v1 import video_edit_pb2 as pb


def test_a_job_runs_on_sam3_weights_converted_from_metas_checkpoint(make_stack, model_cache, tmp_path, monkeypatch):
    tiny = model_cache / "tiny"
    convert_to_the_tiny_config(monkeypatch, tiny / "tiny-sam3")
    checkpoint = write_tiny_meta_checkpoint(tiny / "tiny-sam3", tmp_path / "sam3.pt")
    modelserver_cli(["convert-sam3", str(checkpoint), str(tmp_path / "sam3-hf")])

    weights = ("--sam3", str(tmp_path / "sam3-hf"), "--pix2pix", str(tiny / "tiny-instruct-pix2pix"))
    with make_stack("converted-sam3", tiny=False, modelserver_args=weights) as stack:
        with grpc.insecure_channel(stack.modelserver_address) as channel:
            info = model_grpc.ModelServiceStub(channel).GetInfo(model_pb.GetInfoRequest())
        assert info.segmenter.source == str((tmp_path / "sam3-hf").resolve())
        assert info.segmenter.architecture == "Sam3VideoModel" and not info.segmenter.tiny
        clip = make_sample_clip(stack.input_roots[0] / "clip.mp4", frames=8, width=96, height=64, fps=8)
        with VideoEditClient(stack.orchestrator_address) as client:
            client.start_edit(str(clip), "car", "make the car blue", job_id="converted", **FAST_JOB)
            final = list(client.watch("converted"))[-1]
    assert final.status == pb.JOB_STATUS_FINISHED, final.error
    assert (Path(final.output_dir) / "converted_output.mp4").stat().st_size > 0
