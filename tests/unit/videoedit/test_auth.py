"""The bearer-token check both services share (videoedit.v1.auth)."""

from __future__ import annotations

import pytest

from videoedit.v1.auth import bearer_metadata, token_matches


@pytest.mark.parametrize(
    "authorization, matches",
    [
        ("Bearer s3cret", True),
        ("bearer s3cret", True),  # RFC 7235: the scheme is case-insensitive
        ("BEARER  s3cret ", True),
        ("Bearer S3CRET", False),  # the token is not
        ("Bearer s3cre", False),
        ("Bearer s3cret2", False),
        ("Basic s3cret", False),
        ("s3cret", False),
        ("Bearer", False),
        ("", False),
        ("Bearer sécret", False),  # not ASCII: refused, not an exception
    ],
)
def test_token_matches(authorization, matches):
    assert token_matches(authorization, "s3cret") is matches


def test_the_metadata_a_client_sends_is_what_the_check_accepts():
    ((key, value),) = bearer_metadata("s3cret")
    assert key == "authorization" and token_matches(value, "s3cret")
    assert bearer_metadata(None) == bearer_metadata("") == ()
