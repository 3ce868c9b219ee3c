"""How images and masks travel in model_service.proto messages.

Hand-written (not generated): the encoding rules that both ends of the
ModelService API share. Images are PNG/JPEG bytes of RGB pixels; masks are
COCO-style uncompressed run lengths, which stay small for object masks and
cost one numpy pass each way.
"""

from __future__ import annotations

import cv2
import numpy as np

from videoedit.v1 import geometry_pb2
from videoedit.v1 import model_service_pb2 as pb
from videoedit.v1.contract import FramePrompt, PromptPoint


def encode_image(rgb: np.ndarray, jpeg_quality: int | None = None) -> pb.Image:
    """RGB uint8 HxWx3 -> Image (PNG, or JPEG when `jpeg_quality` is given)."""
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    if jpeg_quality is None:
        ok, buf = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    else:
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
    if not ok:
        raise ValueError(f"could not encode a {rgb.shape} image")
    return pb.Image(data=buf.tobytes())


def decode_image(image: pb.Image, max_side: int | None = None) -> np.ndarray:
    """Image -> RGB uint8 HxWx3. Raises ValueError for bytes that are not an 8-bit RGB PNG/JPEG,
    or (with `max_side`) for images larger than that per side, checked before any pixel is decoded."""
    if not image.data:
        raise ValueError("image data is empty")
    size = image_size(image.data)
    if size is None:
        raise ValueError("image data is not a PNG or JPEG image")
    if max_side is not None and max(size) > max_side:
        raise ValueError(f"{size[0]}x{size[1]} is larger than {max_side} pixels per side")
    pixels = cv2.imdecode(np.frombuffer(image.data, np.uint8), cv2.IMREAD_UNCHANGED)
    if pixels is None:
        raise ValueError("image data is not a decodable PNG or JPEG image")
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    if channels != 3 or pixels.dtype != np.uint8:
        raise ValueError(f"image has {channels} channel(s) of {pixels.dtype}; send 8-bit, 3-channel RGB")
    return cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG or JPEG header, without decoding; None if neither."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24 and data[12:16] == b"IHDR":
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data[:2] != b"\xff\xd8":
        return None
    pos = 2
    while pos + 9 <= len(data):  # walk the JPEG segments up to the frame header (SOFn)
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return int.from_bytes(data[pos + 7 : pos + 9], "big"), int.from_bytes(data[pos + 5 : pos + 7], "big")
        pos += 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
    return None


def encode_mask(mask: np.ndarray) -> pb.Mask:
    """Bool HxW -> Mask with alternating 0/1 run lengths, starting with zeros."""
    height, width = mask.shape
    flat = np.ascontiguousarray(mask, dtype=bool).ravel()
    # Indices where the value changes, framed by the start and the end.
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate(([0], changes, [flat.size]))
    counts = np.diff(bounds)
    if flat.size and flat[0]:
        counts = np.concatenate(([0], counts))
    return pb.Mask(width=width, height=height, counts=counts.tolist())


def decode_mask(mask: pb.Mask) -> np.ndarray:
    """Mask -> bool HxW. Raises ValueError when the runs do not cover the mask."""
    counts = np.asarray(mask.counts, dtype=np.int64)
    size = int(mask.width) * int(mask.height)
    if counts.sum() != size:
        raise ValueError(f"mask runs sum to {int(counts.sum())}, expected {mask.width}x{mask.height}")
    values = np.zeros(len(counts), dtype=bool)
    values[1::2] = True
    return np.repeat(values, counts).reshape(mask.height, mask.width)


def encode_frame_prompt(prompt: FramePrompt) -> pb.FramePrompt:
    """FramePrompt -> its message (a box and object_id only when set)."""
    message = pb.FramePrompt(
        frame_index=prompt.frame_index,
        points=[geometry_pb2.Point(x=p.x, y=p.y, positive=p.positive) for p in prompt.points],
    )
    if prompt.box is not None:
        x0, y0, x1, y1 = prompt.box
        message.box.CopyFrom(geometry_pb2.Box(x0=x0, y0=y0, x1=x1, y1=y1))
    if prompt.object_id is not None:
        message.object_id = prompt.object_id
    return message


def decode_point(point: geometry_pb2.Point) -> PromptPoint:
    """Point -> PromptPoint; `positive` unset is a click on the object."""
    return PromptPoint(point.x, point.y, point.positive if point.HasField("positive") else True)


def decode_frame_prompt(message: pb.FramePrompt) -> FramePrompt:
    """Its message -> FramePrompt (not checked: FramePrompt.problem says what is wrong with it)."""
    box = message.box
    return FramePrompt(
        frame_index=int(message.frame_index),
        points=tuple(decode_point(p) for p in message.points),
        box=(box.x0, box.y0, box.x1, box.y1) if message.HasField("box") else None,
        object_id=message.object_id if message.HasField("object_id") else None,
    )
