"""Images and masks survive the trip through model_service.proto messages."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from videoedit.v1 import model_service_pb2 as pb
from videoedit.v1 import wire


@pytest.mark.parametrize("shape", [(1, 1), (5, 7), (120, 160)])
def test_mask_round_trip(shape):
    rng = np.random.default_rng(0)
    for mask in (rng.random(shape) > 0.5, np.zeros(shape, bool), np.ones(shape, bool)):
        encoded = wire.encode_mask(mask)
        assert sum(encoded.counts) == mask.size
        assert np.array_equal(wire.decode_mask(encoded), mask)


def test_a_blob_mask_is_a_few_runs():
    mask = np.zeros((1080, 1920), bool)
    mask[100:400, 500:900] = True
    assert len(wire.encode_mask(mask).counts) == 2 * 300 + 1


def test_bad_masks_and_images_are_refused():
    with pytest.raises(ValueError, match="expected 2x2"):
        wire.decode_mask(pb.Mask(width=2, height=2, counts=[1, 2]))
    with pytest.raises(ValueError, match="not a PNG or JPEG"):
        wire.decode_image(pb.Image(data=b"hello"))
    with pytest.raises(ValueError, match="empty"):
        wire.decode_image(pb.Image())


def test_png_is_lossless_and_jpeg_is_close():
    rgb = np.random.default_rng(1).integers(0, 256, (32, 48, 3), dtype=np.uint8)
    assert np.array_equal(wire.decode_image(wire.encode_image(rgb)), rgb)
    smooth = np.tile(np.linspace(0, 255, 48, dtype=np.uint8)[None, :, None], (32, 1, 3))
    assert np.abs(wire.decode_image(wire.encode_image(smooth, jpeg_quality=95)).astype(int) - smooth).mean() < 2


def test_image_size_is_read_from_the_header():
    rgb = np.zeros((30, 50, 3), np.uint8)
    assert wire.image_size(wire.encode_image(rgb).data) == (50, 30)
    assert wire.image_size(wire.encode_image(rgb, jpeg_quality=90).data) == (50, 30)
    assert wire.image_size(b"GIF89a....") is None


def test_huge_images_are_refused_before_decoding():
    png = bytearray(wire.encode_image(np.zeros((4, 4, 3), np.uint8)).data)
    png[16:24] = (100_000).to_bytes(4, "big") * 2  # the header now claims 100000x100000 (30 GB of pixels)
    with pytest.raises(ValueError, match="100000x100000 is larger than 4096"):
        wire.decode_image(pb.Image(data=bytes(png)), max_side=4096)


@pytest.mark.parametrize(
    "pixels, words",
    [
        (np.zeros((8, 8), np.uint8), "1 channel"),
        (np.zeros((8, 8, 4), np.uint8), "4 channel"),
        (np.zeros((8, 8, 3), np.uint16), "uint16"),
    ],
)
def test_images_that_are_not_8_bit_rgb_are_refused(pixels, words):
    ok, png = cv2.imencode(".png", pixels)
    assert ok
    with pytest.raises(ValueError, match=words):
        wire.decode_image(pb.Image(data=png.tobytes()))
