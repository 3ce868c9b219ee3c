"""The gateway's pure checks, in-process: signed links, allowed origins, byte ranges, wire-format
ranges of the JSON fields and the access log's redaction. (Through a real gateway process:
tests/system/test_http_hostile.py.)"""

from __future__ import annotations

import logging
import math
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.datastructures import Headers

from gateway import signing
from gateway.artifacts import _in_file
from gateway.convert import FLOAT32_MAX, BadRequest, request_from_json
from gateway.errors import ApiError
from gateway.guards import CheckOrigin, allowed_origins
from gateway.logs import RedactSecrets

PATH = "/api/video/events/job1"


def test_a_signed_link_is_good_for_its_path_and_key_until_it_expires():
    query, expires = signing.signed_query("tok", PATH, "k1", 300, now=1000.0)
    fields = dict(part.split("=") for part in query.split("&"))
    assert expires == 1300 and fields["exp"] == "1300" and fields["k"] == "k1"
    exp, sig = fields["exp"], fields["sig"]
    assert signing.verify("tok", PATH, exp, "k1", sig, now=1300.0)
    assert not signing.verify("tok", PATH, exp, "k1", sig, now=1300.5)  # expired
    assert not signing.verify("tok", "/api/video/events/job2", exp, "k1", sig, now=1000.0)
    assert not signing.verify("other", PATH, exp, "k1", sig, now=1000.0)  # another secret
    assert not signing.verify("tok", PATH, "1301", "k1", sig, now=1000.0)  # a later expiry
    assert not signing.verify("tok", PATH, exp, "k2", sig, now=1000.0)  # acting for another key
    assert not signing.verify("tok", PATH, exp, "", sig, now=1000.0)
    for expires in ("", "-1", "1e9", "١٣٠٠"):  # not plain ASCII digits
        assert not signing.verify("tok", PATH, expires, "k1", sig, now=1000.0)


def test_the_default_origins_are_the_gateways_own():
    assert allowed_origins("", "0.0.0.0", 8000) == (
        "http://localhost:8000",
        "http://127.0.0.1:8000",
        "http://[::1]:8000",
    )
    assert allowed_origins("", "192.168.1.5", 80)[-1] == "http://192.168.1.5:80"
    assert allowed_origins("", "fe80::1", 8000)[-1] == "http://[fe80::1]:8000"
    assert allowed_origins(" https://Video.Example.com:443 ,http://a:1", "x", 8000) == (
        "https://video.example.com",
        "http://a:1",
    )
    for wrong in ("video.example.com", "ftp://a", "http://a/path", "http://a?x=1"):
        with pytest.raises(ValueError, match="VIDEOEDIT_HTTP_ALLOWED_ORIGINS"):
            allowed_origins(wrong, "", 8000)


@pytest.mark.parametrize(
    "headers, allowed",
    [
        ({"host": "127.0.0.1:8000"}, True),
        ({"host": "LOCALHOST:8000", "origin": "http://localhost:8000"}, True),
        ({"host": "127.0.0.1:8000", "origin": "http://localhost:8000"}, True),  # any of them
        ({"host": "127.0.0.1:8001"}, False),
        ({"host": "127.0.0.1"}, False),
        ({"host": "rebound.example:8000"}, False),
        ({}, False),
        ({"host": "127.0.0.1:8000", "origin": "null"}, False),
        ({"host": "127.0.0.1:8000", "origin": "http://127.0.0.1:8001"}, False),
        ({"host": "127.0.0.1:8000", "origin": "https://127.0.0.1:8000"}, False),
    ],
)
def test_host_and_origin(headers, allowed):
    check = CheckOrigin(None, allowed_origins("", "127.0.0.1", 8000))
    if allowed:
        check.check(Headers(headers))
    else:
        with pytest.raises(ApiError) as refused:
            check.check(Headers(headers))
        assert refused.value.status == 403


@pytest.mark.parametrize(
    "wanted, size, answer",
    [
        ((0, 99), 1000, (0, 100)),
        ((10, None), 1000, (10, 990)),
        ((990, 5000), 1000, (990, 10)),
        ((None, 50), 1000, (950, 50)),
        ((None, 5000), 1000, (0, 1000)),
        ((None, 0), 1000, None),
        ((1000, None), 1000, None),
        ((2**64, None), 1000, None),
        ((0, None), 0, None),
        ((None, 5), 0, None),
    ],
)
def test_byte_ranges(wanted, size, answer):
    if answer is not None:
        assert _in_file(wanted, size) == answer
        return
    with pytest.raises(ApiError) as refused:
        _in_file(wanted, size)
    assert refused.value.status == 416 and refused.value.headers == {"Content-Range": f"bytes */{size}"}


@given(st.one_of(st.integers(), st.floats(allow_nan=True, allow_infinity=True)))
def test_a_number_either_fits_its_field_or_is_400_naming_it(value):
    """Never anything but a request or BadRequest: protobuf never sees a value it would reject."""
    base = {"input_video_path": "a", "mask_prompt": "b", "edit_prompt": "c"}
    for field, largest in (("num_inference_steps", 2**31 - 1), ("seed", 2**63 - 1), ("guidance_scale", None)):
        try:
            request = request_from_json(base | {"params": {field: value}})
        except BadRequest as err:
            assert f"params.{field}" in str(err)
            continue
        assert math.isfinite(value)
        if largest is None:  # a float32
            assert abs(value) <= FLOAT32_MAX and getattr(request, field) == pytest.approx(value, rel=1e-6, abs=1e-37)
        else:
            assert value == int(value) and -largest - 1 <= value <= largest and getattr(request, field) == value


def test_several_objects_pass_as_object_edits_and_bad_ones_are_400_naming_them():
    base = {"input_video_path": "a"}
    objects = [
        {"mask_prompt": "car", "edit_prompt": "make it red"},
        {"mask_prompt": "sky", "edit_prompt": "x", "instances": 2},
    ]
    request = request_from_json(base | {"objects": objects})
    assert [(o.mask_prompt, o.edit_prompt, o.instances) for o in request.objects] == [
        ("car", "make it red", ""),
        ("sky", "x", "2"),
    ]
    for objects, named in (
        ({"mask_prompt": "car"}, "objects: must be a list"),
        (["car"], "objects[0]: must be an object"),
        ([{"mask_prompt": "car", "colour": "red"}], "objects[0]: unknown key(s) colour"),
        ([{"mask_prompt": 3}], "objects[0].mask_prompt: 3 is not a string"),
        ([{"mask_prompt": "a\0b"}], "objects[0].mask_prompt"),
    ):
        with pytest.raises(BadRequest, match=re.escape(named)):
            request_from_json(base | {"objects": objects})


def test_visual_prompts_pass_as_messages_and_bad_ones_are_400_naming_them():
    base = {"input_video_path": "a", "mask_prompt": "car", "edit_prompt": "x"}
    prompts = [
        {"frame_index": 3, "points": [{"x": 10, "y": 2.5}, {"x": 1, "y": 1, "positive": False}]},
        {"frame_index": 9, "box": {"x0": 1, "y0": 2, "x1": 30, "y1": 40}, "object": 2},
    ]
    request = request_from_json(base | {"visual_prompts": prompts})
    first, second = request.visual_prompts
    assert first.frame_index == 3 and [(p.x, p.y, p.positive) for p in first.points] == [(10, 2.5, True), (1, 1, False)]
    assert not first.HasField("box") and not first.HasField("object")
    assert (second.box.x0, second.box.y1, second.object) == (1, 40, 2)
    per_object = request_from_json(
        {"input_video_path": "a", "objects": [{"mask_prompt": "car", "visual_prompts": prompts}]}
    )
    assert len(per_object.objects[0].visual_prompts) == 2
    for sent, named in (
        ({"frame_index": 0}, None),
        ("click", "visual_prompts[0]: must be an object"),
        ({"frame": 1}, "visual_prompts[0]: unknown key(s) frame"),
        ({"frame_index": 2**70}, "visual_prompts[0].frame_index"),
        ({"points": {"x": 1}}, "visual_prompts[0].points: must be a list"),
        ({"points": [{"x": 1, "y": "2"}]}, "visual_prompts[0].points[0].y"),
        ({"points": [{"x": float("inf"), "y": 2}]}, "visual_prompts[0].points[0].x"),
        ({"points": [{"x": 1, "y": 2, "positive": "yes"}]}, "visual_prompts[0].points[0].positive"),
        ({"box": {"x0": 1, "y0": 2, "x1": 3}}, "visual_prompts[0].box: must be an object with x0, y0, x1 and y1"),
        ({"object": 1.5}, "visual_prompts[0].object"),
    ):
        if named is None:
            assert request_from_json(base | {"visual_prompts": [sent]}).visual_prompts[0].frame_index == 0
            continue
        with pytest.raises(BadRequest, match=re.escape(named)):
            request_from_json(base | {"visual_prompts": [sent]})


def test_secrets_in_the_access_log_are_redacted():
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        "",
        0,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", "/api/video/events/j?exp=1&sig=abc123&access_token=t0k&Token=x", "1.1", 200),
        None,
    )
    assert RedactSecrets().filter(record)
    line = record.getMessage()
    assert "abc123" not in line and "t0k" not in line and "=x" not in line
    assert "exp=1&sig=REDACTED&access_token=REDACTED&Token=REDACTED" in line
