"""The seed's stages, in order. Each stage is a module named after it."""

from __future__ import annotations

from pathlib import Path

import cv2

from .context import JobContext
from .editing import crop_box, edit_frames, frame_seed, paste, paste_mask, paste_weight
from .errors import InvalidArgument
from .extracting import probe
from .frame_spool import read_spool
from .masking import find_objects, union_mask
from .mask_store import mask_bbox
from .propagating import propagate
from .request import JobStatus
from .saving import save_outputs
from .smoothing import smooth_frames


def output_paths(ctx: JobContext) -> tuple[Path, Path]:
    """(output, mask) paths of the job: mp4 for videos, png for single frames."""
    ext = "png" if ctx.request.mode == "single_frame" else "mp4"
    return (ctx.output_dir / f"{ctx.job_id}_output.{ext}", ctx.output_dir / f"{ctx.job_id}_mask.{ext}")


def run_pipeline(ctx: JobContext) -> None:
    req = ctx.request
    if req.mode == "single_frame":
        return run_single_frame(ctx)
    video_path, mask_path = output_paths(ctx)

    # 1. Extracting: probe and count the frames (decoded again later, never all held).
    ctx.reporter.stage(JobStatus.EXTRACTING, f"reading {req.input_video_path.name}")
    ctx.info = probe(req.input_video_path, req.max_frames, on_frame=ctx.reporter.advance)
    ctx.log.info("extracting: %s %dx%d, %s fps, %d frames, codec %s, audio %s", req.input_video_path,
                 ctx.info.width, ctx.info.height, ctx.info.fps, ctx.info.frame_count, ctx.info.codec,
                 ctx.info.has_audio)

    # 2. Masking: find the prompted objects (in the first chunk, or where they first appear).
    sighting = find_objects(ctx)

    # 3. Propagating: track them through the rest of the video.
    masks = propagate(ctx, sighting)

    # 4. Editing: crop, edit, paste back inside the eroded, feathered mask.
    frames_path = edit_frames(ctx, masks, ctx.workdir / "edited.mkv")

    # 5. Smoothing: temporal EMA inside the mask.
    if req.apply_smoothing:
        frames_path = smooth_frames(ctx, masks, frames_path, ctx.workdir / "smoothed.mkv")

    # 6. Saving: H.264 mp4 with the source's fps and audio, and the mask video.
    save_outputs(ctx, read_spool(frames_path), masks, video_path, mask_path)


def run_single_frame(ctx: JobContext) -> None:
    """Edit one frame (extra frame_index) into PNGs, for fast prompt tuning."""
    req, opts = ctx.request, ctx.options
    video_path, mask_path = output_paths(ctx)

    ctx.reporter.stage(JobStatus.EXTRACTING, f"reading frame {opts.frame_index} of {req.input_video_path.name}")
    ctx.info = probe(req.input_video_path, opts.frame_index + 1)
    if ctx.info.frame_count <= opts.frame_index:
        raise InvalidArgument("extra[frame_index]", f"{opts.frame_index} is past the last frame "
                              f"({ctx.info.frame_count - 1})")
    info = ctx.info

    sighting = find_objects(ctx, start=opts.frame_index, stop=opts.frame_index + 1)
    frame, mask = sighting.frames[0], union_mask(sighting.objects[0], sighting.keep, info.height, info.width)

    ctx.reporter.stage(JobStatus.EDITING, f"editing: {req.edit_prompt!r}", total_frames=1)
    box = crop_box(mask_bbox(mask), info.width, info.height, opts.crop_margin)
    crop = cv2.resize(frame[box[1]:box[3], box[0]:box[2]], (opts.edit_size,) * 2, interpolation=cv2.INTER_AREA)
    [edited] = ctx.models.edit([crop], req.edit_prompt, req.image_guidance_scale, req.guidance_scale,
                               req.num_inference_steps, [frame_seed(req.seed, opts.frame_index, opts.seed_mode)])
    weight = paste_weight(mask, req.erode_kernel)
    result = paste(frame, edited, box, weight)
    ctx.reporter.advance(1)

    ctx.reporter.stage(JobStatus.SAVING, "writing PNGs")
    cv2.imwrite(str(video_path), cv2.cvtColor(result, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(mask_path), paste_mask(mask, req.erode_kernel) * 255)

