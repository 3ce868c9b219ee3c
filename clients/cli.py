"""`videoedit`: start, follow, inspect and cancel edit jobs; `videoedit demo` runs one locally.

Exit codes: 0 finished (or the command succeeded), 1 the job failed,
2 bad usage or request (INVALID_ARGUMENT, NOT_FOUND, PERMISSION_DENIED...),
3 the job was cancelled, 4 the server could not be reached or gave up.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import grpc

from videoedit.v1 import video_edit_pb2 as pb

from .client import VideoEditClient
from .follow import EXIT_BAD_REQUEST, EXIT_FINISHED, EXIT_UNAVAILABLE, describe, exit_code, follow, status_name

_UNAVAILABLE_CODES = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNKNOWN,
}


def cmd_edit(client: VideoEditClient, args) -> int:
    fields = dict(job_id=args.job_id or "", mode=args.mode, extra=dict(kv.split("=", 1) for kv in args.extra))
    for name in (
        "max_frames",
        "num_inference_steps",
        "seed",
        "guidance_scale",
        "image_guidance_scale",
        "erode_kernel",
        "smoothing_window",
        "smoothing_alpha",
    ):
        if getattr(args, name) is not None:
            fields[name] = getattr(args, name)
    if args.no_smoothing:
        fields["apply_smoothing"] = False
    if args.output_dir:
        fields["output_dir"] = args.output_dir
    video = os.path.abspath(args.video)
    if args.upload:
        uploaded = client.upload(args.video)
        print(f"uploaded {args.video} ({uploaded.size_bytes} bytes) to {uploaded.input_video_path}", file=sys.stderr)
        video = uploaded.input_video_path
    status = client.start_edit(video, args.mask, args.edit, **fields)
    print(f"job {status.job_id} {status_name(status.status)}", file=sys.stderr)
    if args.no_wait:
        print(status.job_id)
        return EXIT_FINISHED
    final = follow(client, status.job_id)
    print(describe(final))
    if args.download:
        artifacts = [pb.ARTIFACT_LOG] + (
            [pb.ARTIFACT_OUTPUT_VIDEO, pb.ARTIFACT_MASK_VIDEO] if final.status == pb.JOB_STATUS_FINISHED else []
        )
        for artifact in artifacts:
            print(f"  saved:  {client.download(final.job_id, artifact, args.download)}")
    return exit_code(final)


def cmd_status(client: VideoEditClient, args) -> int:
    status = client.get_status(args.job_id)
    print(describe(status))
    return exit_code(status)


def cmd_watch(client: VideoEditClient, args) -> int:
    final = follow(client, args.job_id)
    print(describe(final))
    return exit_code(final)


def cmd_cancel(client: VideoEditClient, args) -> int:
    print(describe(client.cancel(args.job_id)))
    return EXIT_FINISHED


def cmd_list(client: VideoEditClient, args) -> int:
    status = pb.JobStatus.Value(f"JOB_STATUS_{args.status.upper()}") if args.status else pb.JOB_STATUS_UNSPECIFIED
    response = client.list_jobs(status=status, page_size=args.page_size, page_token=args.page_token)
    for job in response.jobs:
        print(f"{job.job_id}\t{status_name(job.status)}\t{job.progress:.0%}\t{job.message}")
    if response.next_page_token:
        print(f"next page: --page-token {response.next_page_token}", file=sys.stderr)
    return EXIT_FINISHED


def cmd_eval(args) -> int:
    from evaluation import evaluate

    q = evaluate(Path(args.input), Path(args.output), Path(args.mask), dilate_px=args.dilate)
    print(f"frames                         {q.frames}")
    print(f"background PSNR (dB, higher=better)   {q.background_psnr_db:8.2f}")
    print(f"background SSIM (1=identical)          {q.background_ssim:8.4f}")
    print(f"warp error in mask (output / input)    {q.warp_error:8.2f} / {q.source_warp_error:.2f}")
    print(f"flicker in mask (output / input)       {q.flicker:8.2f} / {q.source_flicker:.2f}")
    print(f"mask temporal IoU                      {q.mask_temporal_iou:8.3f}")
    print(f"mask coverage                          {q.mask_coverage:8.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(q.to_dict(), indent=2))
    return EXIT_FINISHED


def cmd_demo(args) -> int:
    from .demo import run_demo

    return run_demo(Path(args.workdir), frames=args.frames, steps=args.steps)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="videoedit", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--server",
        default=os.environ.get("VIDEOEDIT_SERVER", "localhost:50051"),
        help="orchestrator address (env VIDEOEDIT_SERVER)",
    )
    parser.add_argument(
        "--tls-ca",
        default=None,
        help="PEM file of the CA that signed the server's TLS certificate, or 'system' "
        "(env VIDEOEDIT_TLS_CA; unset: plaintext). The key comes from VIDEOEDIT_API_KEY, else "
        "VIDEOEDIT_AUTH_TOKEN",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    edit = sub.add_parser("edit", help="start an edit job and follow it")
    edit.add_argument("video", help="input video path (as the server sees it, or a local file with --upload)")
    edit.add_argument("--upload", action="store_true", help="send the local video to the server first")
    edit.add_argument("--download", metavar="DIR", help="save the output, mask and log into DIR when done")
    edit.add_argument("--mask", required=True, help='what to edit, e.g. "hair"')
    edit.add_argument("--edit", required=True, help='the instruction, e.g. "make the hair red"')
    edit.add_argument("--job-id")
    edit.add_argument("--output-dir")
    edit.add_argument("--mode", default="video", choices=["video", "single_frame"])
    edit.add_argument("--max-frames", dest="max_frames", type=int)
    edit.add_argument("--steps", dest="num_inference_steps", type=int)
    edit.add_argument("--seed", type=int)
    edit.add_argument("--guidance-scale", type=float)
    edit.add_argument("--image-guidance-scale", type=float)
    edit.add_argument("--erode-kernel", type=int)
    edit.add_argument("--smoothing-window", type=int)
    edit.add_argument("--smoothing-alpha", type=float)
    edit.add_argument("--no-smoothing", action="store_true")
    edit.add_argument("--extra", action="append", default=[], metavar="KEY=VALUE")
    edit.add_argument("--no-wait", action="store_true", help="print the job id and return")
    edit.set_defaults(run=cmd_edit)

    for name, func, help_text in (
        ("status", cmd_status, "print a job's status"),
        ("watch", cmd_watch, "follow a job to its end"),
        ("cancel", cmd_cancel, "cancel a job"),
    ):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("job_id")
        p.set_defaults(run=func)

    listing = sub.add_parser("list", help="list jobs, newest first")
    listing.add_argument("--status", choices=[status_name(v) for v in pb.JobStatus.values() if v])
    listing.add_argument("--page-size", type=int, default=0)
    listing.add_argument("--page-token", default="")
    listing.set_defaults(run=cmd_list)

    quality = sub.add_parser("eval", help="edit-quality metrics of a result (local files, no models)")
    quality.add_argument("input", help="the input video")
    quality.add_argument("output", help="the edited video ({job_id}_output.mp4)")
    quality.add_argument("mask", help="the mask video ({job_id}_mask.mp4)")
    quality.add_argument("--dilate", type=int, default=8, help="pixels the mask grows by for the background metrics")
    quality.add_argument("--json", help="also write the metrics to this file")
    quality.set_defaults(run=None)

    demo = sub.add_parser("demo", help="start both services locally and edit a sample clip")
    demo.add_argument("--workdir", default="demo", help="where the clip, logs and outputs go")
    demo.add_argument("--frames", type=int, default=48)
    demo.add_argument("--steps", type=int, default=None, help="diffusion steps (default: 4 tiny, 50 real)")
    demo.set_defaults(run=None)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        sys.exit(cmd_demo(args))
    if args.command == "eval":
        sys.exit(cmd_eval(args))
    with VideoEditClient(args.server, tls_ca=args.tls_ca) as client:
        try:
            sys.exit(args.run(client, args))
        except grpc.RpcError as err:
            print(f"error: {err.code().name}: {err.details()}", file=sys.stderr)
            sys.exit(EXIT_UNAVAILABLE if err.code() in _UNAVAILABLE_CODES else EXIT_BAD_REQUEST)


if __name__ == "__main__":
    main()
