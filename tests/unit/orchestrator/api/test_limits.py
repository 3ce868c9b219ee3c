"""What one client may hold open: streams per client (every kind), uploads per client, watchers in
total; refusals name the limit and its variable, and a closed stream gives its place back. The
bearer check takes the scheme in any case."""

from __future__ import annotations

from contextlib import ExitStack

import pytest

from orchestrator.api.limits import Stream, StreamLimits, client_of
from orchestrator.config import Settings
from orchestrator.errors import ResourceExhausted


def limits(**fields) -> StreamLimits:
    return StreamLimits(Settings(**fields))


def test_the_client_is_the_peers_host_without_its_port():
    assert client_of("ipv4:10.0.0.5:4242") == "10.0.0.5"
    assert client_of("ipv6:[::1]:4242") == "::1"
    assert client_of("unix:/run/videoedit.sock") == "unix:/run/videoedit.sock"


def test_streams_per_client_count_every_kind_and_spare_other_clients():
    counted = limits(max_streams_per_client=3)
    with ExitStack() as held:
        for kind in (Stream.WATCH, Stream.UPLOAD, Stream.DOWNLOAD):
            held.enter_context(counted.hold("ipv4:10.0.0.5:1000", kind))
        with pytest.raises(ResourceExhausted, match=r"10.0.0.5 has 3 streams.*VIDEOEDIT_MAX_STREAMS_PER_CLIENT=3"):
            counted.hold("ipv4:10.0.0.5:2000", Stream.WATCH).__enter__()  # another port: the same client
        with counted.hold("ipv4:10.0.0.6:1000", Stream.WATCH):
            pass
    with counted.hold("ipv4:10.0.0.5:1000", Stream.WATCH):  # places given back
        assert counted.watchers == 1
    assert counted.watchers == 0 and not counted._streams and not counted._uploads


def test_uploads_per_client_and_watchers_in_total():
    counted = limits(max_uploads_per_client=2, max_watchers=2)
    with ExitStack() as held:
        for _ in range(2):
            held.enter_context(counted.hold("ipv4:10.0.0.5:1", Stream.UPLOAD))
        with pytest.raises(ResourceExhausted, match="VIDEOEDIT_MAX_UPLOADS_PER_CLIENT=2"):
            counted.hold("ipv4:10.0.0.5:1", Stream.UPLOAD).__enter__()
        held.enter_context(counted.hold("ipv4:10.0.0.5:1", Stream.DOWNLOAD))  # other kinds still open
        held.enter_context(counted.hold("ipv4:10.0.0.7:1", Stream.WATCH))
        held.enter_context(counted.hold("ipv4:10.0.0.8:1", Stream.WATCH))
        with pytest.raises(ResourceExhausted, match="VIDEOEDIT_MAX_WATCHERS=2"):
            counted.hold("ipv4:10.0.0.9:1", Stream.WATCH).__enter__()


def test_a_stream_ending_with_an_error_gives_its_place_back():
    counted = limits(max_streams_per_client=1)
    with pytest.raises(ValueError), counted.hold("ipv4:10.0.0.5:1", Stream.DOWNLOAD):
        raise ValueError("the download failed")
    with counted.hold("ipv4:10.0.0.5:1", Stream.DOWNLOAD):
        pass


@pytest.mark.parametrize("value", [0, -3])
def test_limits_below_one_are_refused_naming_the_variable(value):
    with pytest.raises(ValueError, match=f"VIDEOEDIT_MAX_WATCHERS {value} must be 1 or more"):
        Settings(max_watchers=value)
    with pytest.raises(ValueError, match="VIDEOEDIT_UPLOAD_IDLE_S 0"):
        Settings(upload_idle_s=0)


def test_a_trusted_gateway_counts_each_client_it_names_and_others_count_as_their_address():
    counted = limits(max_uploads_per_client=1, gateway_token="gw-secret")
    gateway = "ipv4:10.0.0.9:5000"

    def naming(client: str, token: str = "gw-secret") -> tuple[tuple[str, str], ...]:
        return (("videoedit-gateway-token", token), ("videoedit-client", client))

    with ExitStack() as held:
        held.enter_context(counted.hold(gateway, Stream.UPLOAD, naming("192.0.2.1")))
        held.enter_context(counted.hold(gateway, Stream.UPLOAD, naming("192.0.2.2")))  # another HTTP client
        with pytest.raises(ResourceExhausted, match="192.0.2.1 has 1 uploads"):
            counted.hold(gateway, Stream.UPLOAD, naming("192.0.2.1")).__enter__()
        held.enter_context(counted.hold(gateway, Stream.UPLOAD, naming("192.0.2.3", "forged")))  # counts as 10.0.0.9
        with pytest.raises(ResourceExhausted, match="10.0.0.9 has 1 uploads"):
            counted.hold(gateway, Stream.UPLOAD, naming("192.0.2.4", "forged")).__enter__()
    untrusting = limits(max_uploads_per_client=1)  # no VIDEOEDIT_GATEWAY_TOKEN: nobody may name a client
    with untrusting.hold(gateway, Stream.UPLOAD, naming("192.0.2.1")):
        with pytest.raises(ResourceExhausted, match="10.0.0.9 has 1 uploads"):
            untrusting.hold(gateway, Stream.UPLOAD, naming("192.0.2.2")).__enter__()
