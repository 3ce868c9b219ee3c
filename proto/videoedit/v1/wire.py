"""How images and masks travel in model_service.proto messages.

Hand-written (not generated): the encoding rules that both ends of the
ModelService API share. Images are PNG/JPEG bytes of RGB pixels; masks are
COCO-style uncompressed run lengths, which stay small for object masks and
cost one numpy pass each way.
"""

from __future__ import annotations

import cv2
import numpy as np

from videoedit.v1 import model_service_pb2 as pb


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


def decode_image(image: pb.Image) -> np.ndarray:
    """Image -> RGB uint8 HxWx3. Raises ValueError for bytes that are not an image."""
    if not image.data:
        raise ValueError("image data is empty")
    bgr = cv2.imdecode(np.frombuffer(image.data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError("image data is not a PNG or JPEG image")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


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
